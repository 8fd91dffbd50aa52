"""A whole conversation within the budget: older turns' code outlined, then older exchanges
dropped, oldest first, before the current message's code is cut; the current instruction is
never cut; `older_turns` says what was done; and a real backend answers such a conversation."""

from __future__ import annotations

import pytest
from conftest import base_url, spec

from pi_appliance.errors import BadRequest
from pi_appliance.pipeline import OverBudget, PipelineConfig, prepare, prepare_chat
from pi_appliance.pipeline.budget import TOKEN_ESTIMATES
from pi_appliance.pipeline.conversation import fit_history, message_tokens, outline
from pi_appliance.pipeline.prepare import OlderTurns
from pi_appliance.planning.plan import passthrough, payload_of
from pi_appliance.settings import Backend, Route, Settings
from pi_appliance.wire import protocol

CFG = PipelineConfig()
COUNT = TOKEN_ESTIMATES["smollm2"]
CODE = "\n\n".join(f"def fetch_{i}(url):\n    r = requests.get(url)\n    return r.json()"
                   for i in range(30))
SYSTEM = {"role": "system", "content": "Answer briefly."}
ASK = "Now convert fetch_3 to async/await."


def conversation(turns: int = 3, current: str = ASK) -> list[dict[str, str]]:
    msgs = [SYSTEM]
    for t in range(turns):
        msgs += [{"role": "user", "content": f"Write the fetchers of module {t}."},
                 {"role": "assistant", "content": f"Here they are:\n```py app{t}.py\n{CODE}\n"
                                                  f"```\nThat is module {t}."}]
    return [*msgs, {"role": "user", "content": current}]


def whole(msgs) -> int:
    """The conversation's tokens sent as it is (the current message's template aside)."""
    return message_tokens([*msgs[:-1]], COUNT) + COUNT(msgs[-1]["content"])


def test_a_conversation_within_the_budget_is_sent_as_it_is():
    msgs = conversation()
    prepared = prepare_chat(msgs, CFG, count_tokens=COUNT, budget_tokens=100_000)
    assert prepared.history is None
    assert prepared.older_turns == OlderTurns(3, 3, 0, 0, prepared.older_turns.original_tokens,
                                              prepared.older_turns.original_tokens)
    assert prepared.context_tokens == message_tokens(msgs[:-1], COUNT)
    assert prepared.stats_dict()["older_turns"]["kept"] == 3


def test_older_code_is_outlined_oldest_first_then_exchanges_dropped_oldest_first():
    msgs = conversation()
    full = message_tokens(msgs[:-1], COUNT)
    fixed = message_tokens([SYSTEM], COUNT) + COUNT(ASK)
    outlined = prepare_chat(msgs, CFG, count_tokens=COUNT, budget_tokens=full // 3)
    one = outlined.older_turns.sent_tokens // 3  # an outlined exchange (all three alike)
    seen = []
    for budget in (full - 50, full // 3, fixed + 2 * one + 2, fixed + 2):
        p = prepare_chat(msgs, CFG, count_tokens=COUNT, budget_tokens=budget)
        o = p.older_turns
        assert o is not None and o.turns == 3 and o.kept + o.reduced + o.dropped == 3
        assert p.context_tokens + COUNT(p.prompt) <= budget
        assert p.prompt == ASK  # the current message goes whole: older turns gave way first
        assert p.history is not None and p.history[0] == SYSTEM  # never dropped
        seen.append((o.kept, o.reduced, o.dropped))
        sent = [m["content"] for m in p.history[1:]]
        if o.dropped == 0:
            # The oldest exchanges are the reduced ones; the newest are whole.
            answers = sent[1::2]
            assert [CODE not in a for a in answers] == [True] * o.reduced + [False] * o.kept
        else:
            assert len(sent) == 2 * (3 - o.dropped)  # whole exchanges, the newest kept
            assert not sent or sent[-1].endswith("That is module 2.")
    assert seen == [(2, 1, 0), (0, 3, 0), (0, 2, 1), (0, 0, 3)]


def test_an_outline_keeps_the_prose_the_fence_and_what_the_instruction_names():
    msgs = conversation(turns=1)
    p = prepare_chat(msgs, CFG, count_tokens=COUNT, budget_tokens=400)
    answer = p.history[-1]["content"]
    assert answer.startswith("Here they are:\n```py app0.py\n")  # the file name stays
    assert answer.endswith("```\nThat is module 0.")
    assert "def fetch_3(url):" in answer  # the current instruction names it
    assert "def fetch_4(url):" not in answer
    assert "# … 26 functions omitted: fetch_4, fetch_5, fetch_6, fetch_7, +22 more …" in answer
    assert p.older_turns.sent_tokens < p.older_turns.original_tokens


def test_a_short_block_and_a_message_without_code_are_not_outlined():
    assert outline("Sure.\n```py\nx = 1\n```\nOK", None, CFG) == "Sure.\n```py\nx = 1\n```\nOK"
    assert outline("no code here", None, CFG) == "no code here"


def test_the_current_message_code_is_cut_only_when_every_older_exchange_is_gone():
    big = f"Convert fetch_3 to async/await.\n```python\n{CODE}\n```"
    msgs = conversation(current=big)
    alone = prepare(big, CFG, count_tokens=COUNT)
    budget = COUNT(alone.prompt) + 60  # room for the system message only
    p = prepare_chat(msgs, CFG, count_tokens=COUNT, budget_tokens=budget)
    assert p.older_turns.dropped == 3 and p.prompt == alone.prompt
    cut = prepare_chat(msgs, CFG, count_tokens=COUNT, budget_tokens=COUNT(alone.prompt) - 20)
    assert cut.older_turns.dropped == 3
    assert COUNT(cut.prompt) < COUNT(alone.prompt)
    assert cut.instruction == "Convert fetch_3 to async/await."
    assert cut.prompt.startswith("### Instruction:\nConvert fetch_3 to async/await.")
    assert "def fetch_3(url):" in cut.prompt


def test_the_instruction_alone_over_the_budget_is_refused():
    with pytest.raises(OverBudget):
        prepare_chat(conversation(current="Explain this. " * 40), CFG, count_tokens=COUNT,
                     budget_tokens=30)


def test_raw_mode_sends_the_conversation_as_it_is_or_refuses_it():
    msgs = conversation()
    full = whole(msgs)
    p = prepare_chat(msgs, CFG, count_tokens=COUNT, budget_tokens=full + 10, mode="raw")
    assert p.history is None and p.older_turns.kept == 3
    with pytest.raises(OverBudget, match="the conversation, sent as it is,"):
        prepare_chat(msgs, CFG, count_tokens=COUNT, budget_tokens=full - 10, mode="raw")


def test_fit_history_keeps_system_messages_and_counts_exchanges():
    before = [SYSTEM, {"role": "assistant", "content": "hello"},
              {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
              {"role": "system", "content": "mid"}, {"role": "user", "content": "c"}]
    h = fit_history(before, 0, COUNT, lambda text: text)
    assert [m["content"] for m in h.messages] == ["Answer briefly.", "mid"]
    assert h.older == OlderTurns(3, 0, 0, 3, h.older.original_tokens, 0)
    assert h.tokens == message_tokens([SYSTEM, before[4]], COUNT)


def test_the_payload_carries_the_fitted_history_before_the_current_message():
    msgs = conversation()
    creq = protocol.parse("chat", {"messages": msgs, "max_tokens": 16}, 4096)
    p = prepare_chat(creq.messages, CFG, count_tokens=COUNT, budget_tokens=300)
    sent = payload_of(creq, p, 16)["messages"]
    assert sent[0] == SYSTEM and sent[-1] == {"role": "user", "content": ASK}
    assert list(p.history) == sent[:-1]


def test_past_the_pipeline_deadline_older_exchanges_are_dropped_to_fit():
    msgs = conversation()
    creq = protocol.parse("chat", {"messages": msgs}, 4096)
    one = message_tokens(msgs[1:3], COUNT)  # an exchange, whole (all three alike)
    budget = message_tokens([SYSTEM], COUNT) + one + COUNT(ASK) + 2
    p = passthrough(creq, "timed out", COUNT, budget, 1.0)
    assert p.older_turns == OlderTurns(3, 1, 0, 2, 3 * one, one)
    assert payload_of(creq, p, 16)["messages"] == [SYSTEM, *msgs[-3:]]
    assert passthrough(creq, "timed out", COUNT, 100_000, 1.0).history is None
    with pytest.raises(BadRequest):
        passthrough(creq, "timed out", COUNT, COUNT(ASK), 1.0)


# The real services: SmolLM2 in a 1024-token context, a conversation about twice that.


@pytest.fixture
async def small_context(start_backend, smollm2, start_orchestrator) -> str:
    backend = await start_backend(spec("smol", smollm2, n_ctx=1024))
    route = Route("qwen", "smol", ("vps",), ("python",), n_ctx=1024, tokenizer="smollm2")
    return await start_orchestrator(Settings(backends=(Backend("vps", base_url(backend)),),
                                             routes=(route,), default_route="qwen"))


async def test_a_conversation_over_the_context_is_answered_with_older_turns_given_way(
        small_context, http):
    msgs = conversation(turns=2)
    assert whole(msgs) > 1024  # sent as it is, it would not fit
    chat = small_context + "/v1/chat/completions"
    async with http.post(chat, json={"messages": msgs, "max_tokens": 16,
                                     "cerebrum": {"context": "raw"}}) as resp:
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["error"]["code"] == "context_length_exceeded"
    async with http.post(chat, json={"messages": msgs, "max_tokens": 16}) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    older = body["cerebrum"]["older_turns"]
    assert older["turns"] == 2 and older["reduced"] + older["dropped"] >= 1
    assert older["sent_tokens"] < older["original_tokens"]
    assert body["usage"]["prompt_tokens"] <= 1024 - 16
    assert body["choices"][0]["message"]["role"] == "assistant"
