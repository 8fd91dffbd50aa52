"""Planning one completion, the pure part (it runs in a pipeline worker process, so it
imports nothing heavy): language, route, the context pipeline, the budget, the payload."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cerebrum import openai

from ..errors import BadRequest
from ..pipeline import Prepared, prepare, prepare_chat
from ..pipeline.budget import TOKEN_ESTIMATES, TokenCounter
from ..pipeline.config import PipelineConfig
from ..pipeline.conversation import current_index, fit_history, message_tokens
from ..pipeline.errors import OverBudget
from ..pipeline.language import detect_language
from ..settings import Settings
from ..upstream import routing
from ..wire import protocol

TEMPLATE_MARGIN = 64  # tokens the chat template adds around the messages


@dataclass(frozen=True)
class Plan:
    """A parsed request, where it goes, what is sent, and the upstream payload."""

    request: protocol.ClientRequest
    decision: routing.Decision
    prepared: Prepared
    payload: dict[str, Any]

    @property
    def prediction_chars(self) -> int:
        """Characters of the prediction sent upstream (ours or the client's); 0 when none is."""
        return len(openai.prediction_text(self.payload.get("prediction")) or "")


def choose_and_prepare(creq: protocol.ClientRequest, settings: Settings, cfg: PipelineConfig,
                       max_tokens: int, clock: Callable[[], float]
                       ) -> tuple[routing.Decision, Prepared]:
    """The pure, CPU-bound part (run in a worker thread): language, route, pipeline."""
    language, why = detect_language(creq.content, creq.language)
    decision = routing.choose(settings, model=creq.model, language=language,
                              language_reason=why)
    budget = budget_of(decision, max_tokens)
    left_alone = creq.left_alone
    # A chat is budgeted whole: its older turns give way before the current message's code.
    run = prepare if creq.kind == "completion" else prepare_chat
    try:
        prepared = run(creq.content if creq.kind == "completion" else creq.messages, cfg,
                       language=decision.language,
                       count_tokens=TOKEN_ESTIMATES[decision.route.tokenizer],
                       budget_tokens=budget, mode="raw" if left_alone else creq.context,
                       clock=clock)
    except OverBudget as exc:
        raise BadRequest(f"the prompt does not fit {decision.route.model}: {exc}",
                         code="context_length_exceeded") from None
    if left_alone:
        prepared = dataclasses.replace(prepared, reason=left_alone)
    return decision, prepared


def budget_of(decision: routing.Decision, max_tokens: int) -> int:
    """Prompt tokens the route's context leaves after the answer and the chat template."""
    budget = decision.route.n_ctx - max_tokens - TEMPLATE_MARGIN
    if budget <= 0:
        raise BadRequest(f"max_tokens {max_tokens} leaves no room in the "
                         f"{decision.route.n_ctx}-token context of {decision.route.model}",
                         code="context_length_exceeded", param="max_tokens")
    return budget


def passthrough(creq: protocol.ClientRequest, reason: str, count_tokens: TokenCounter,
                budget: int, elapsed_ms: float) -> Prepared:
    """The raw prompt as it came (when the pipeline could not finish in time), if it fits;
    in a chat, the older exchanges it has no room for dropped, oldest first (outlining their
    code is the pipeline's work: only cheap token estimates here)."""
    text = creq.content
    tokens = count_tokens(text)
    others, history = 0, None
    if creq.kind == "chat":
        last = current_index(creq.messages)
        after = message_tokens(creq.messages[last + 1:], count_tokens)
        history = fit_history(creq.messages[:last], budget - tokens - after, count_tokens,
                              lambda content: content)
        others = history.tokens + after
    if tokens + others > budget:
        raise BadRequest(f"the prompt is about {tokens + others} tokens, over the budget of "
                         f"{budget}, and the context pipeline ran out of time reducing it",
                         code="context_length_exceeded")
    return Prepared("raw", reason, creq.language, "not detected (pipeline timed out)", None,
                    (), [{"role": "user", "content": text}], text, len(text), tokens,
                    len(text), tokens, 0.0, 0, 0, 0, 0, elapsed_ms, context_tokens=others,
                    history=history.messages if history and history.changed else None,
                    older_turns=history.older if history else None)


def payload_of(creq: protocol.ClientRequest, prepared: Prepared, max_tokens: int
               ) -> dict[str, Any]:
    """The upstream request: the client's options, the reduced messages or prompt, and the
    prediction: the client's own as sent, else, for an edit task, the code the answer will
    likely repeat (unless the client turned it off). Sent to any upstream: ours drafts from
    it, llama-server ignores fields it does not know."""
    payload: dict[str, Any] = {**creq.options, "max_tokens": max_tokens}
    if not creq.stream:
        # The upstream always streams; OpenAI's streams carry usage only when asked.
        payload["stream_options"] = {"include_usage": True}
    if creq.prediction is not None:
        payload["prediction"] = creq.prediction
    elif creq.predict and prepared.prediction and creq.options.get("speculative") is not False:
        payload["prediction"] = protocol.prediction_of(prepared.prediction)
    unchanged = prepared.mode == "raw" and prepared.prompt == creq.content
    if creq.kind == "chat" and unchanged and prepared.history is None:
        payload["messages"] = list(creq.sent_messages)  # as the client sent them
    elif creq.kind == "chat":
        last = current_index(creq.messages)
        before = creq.messages[:last] if prepared.history is None else prepared.history
        payload["messages"] = [*before, *prepared.messages, *creq.messages[last + 1:]]
    else:
        payload["prompt"] = creq.sent_prompt if unchanged else prepared.prompt
    return payload
