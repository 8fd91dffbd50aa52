"""Every request field of OpenAI's chat and text completions, and what each tier does with it.

One row per field. The backend either honours a field or refuses it with a 400 naming it;
nothing is accepted and ignored. A refused field's `neutral` values ask for nothing beyond
OpenAI's default (`n: 1`, `logprobs: false`, `store: false`), so they are honoured as they
are. The orchestrator passes every field it does not use itself through to its upstream
unchanged (which honours or refuses it: ours, llama-server, vLLM); it refuses only what no
upstream of it could honour. To honour a field: flip its row to HONOURED and read it in
`request.parse`. `python -m cerebrum.openai.fields` prints the table of
docs/openai-fields.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cerebrum import fieldtable
from cerebrum.fieldtable import HONOURED, NO_OP, PASSED, REFUSED, Tier

__all__ = ["FIELDS", "HONOURED", "NO_OP", "PASSED", "REFUSED", "Field", "Kind", "Tier"]

Kind = Literal["chat", "completion"]

CHAT: frozenset[Kind] = frozenset({"chat"})
COMPLETION: frozenset[Kind] = frozenset({"completion"})
BOTH: frozenset[Kind] = CHAT | COMPLETION


@dataclass(frozen=True)
class Field(fieldtable.Field):
    """One request field; the orchestrator passes a field upstream unless its row says."""

    orchestrator: str | None = PASSED


_ROUTED = "routing: a route's model, or `auto` (by language); the route's model is sent"
_PIPELINE = "the context pipeline reduces it (unless `cerebrum.context` is `raw`, or tools "\
    "or a response_format are in play); sent upstream"
_NOT_YET = "not implemented yet (issue 11)"

FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("model", BOTH, HONOURED, "picks a model of the manifest; absent: the first",
          orchestrator=HONOURED, orchestrator_why=_ROUTED),
    Field("messages", CHAT, HONOURED, "rendered by the model's chat template; roles system, "
          "developer (as system), user, assistant, tool; text content parts only",
          orchestrator=HONOURED, orchestrator_why=_PIPELINE),
    Field("prompt", COMPLETION, HONOURED, "a string (or an array of one string)",
          orchestrator=HONOURED, orchestrator_why=_PIPELINE),
    Field("suffix", COMPLETION, HONOURED, "fill in the middle between prompt and suffix",
          orchestrator=HONOURED, orchestrator_why="fill in the middle with repository context "
          "(as /infill)"),
    Field("stream", BOTH, HONOURED, "server-sent events ending in [DONE]",
          orchestrator=HONOURED, orchestrator_why="relayed; the upstream always streams"),
    Field("stream_options", BOTH, HONOURED, "{include_usage}: with true, a last chunk with "
          "no choices carries the usage, the others `usage: null`; without it no usage is "
          "streamed (OpenAI's shapes); only with stream: true"),
    Field("max_tokens", BOTH, HONOURED, "1 to max_tokens_cap, and it must fit the context",
          orchestrator=HONOURED, orchestrator_why="checked against the route's context; "
          "always sent (the route's default when absent)"),
    Field("max_completion_tokens", BOTH, HONOURED, "as max_tokens (max_tokens wins)",
          orchestrator=HONOURED, orchestrator_why="as max_tokens"),
    Field("temperature", BOTH, HONOURED, "0 to 2"),
    Field("top_p", BOTH, HONOURED, "0 to 1"),
    Field("n", BOTH, HONOURED, "1 to max_n (4): choices generated one after another on the "
          "evaluated prompt; with a seed, choice i uses seed + i; usage counts them all"),
    Field("stop", BOTH, HONOURED, "up to 4 strings of up to 256 characters (16 with suffix)"),
    Field("seed", BOTH, HONOURED, "a 64-bit integer, folded to llama.cpp's 32 bits"),
    Field("presence_penalty", BOTH, HONOURED, "-2 to 2: llama.cpp's penalties sampler, over "
          "the last 64 tokens (llama-server's penalty_last_n)"),
    Field("frequency_penalty", BOTH, HONOURED, "-2 to 2: as presence_penalty"),
    Field("logit_bias", BOTH, HONOURED, "token id strings → -100..100, added to the logits "
          "before sampling; ids past the vocabulary are a 400"),
    Field("logprobs", BOTH, HONOURED, "chat: true gives logprobs.content (token, logprob, "
          "bytes, top_logprobs); completions: 0 to 5 alternatives, the legacy shape (tokens, "
          "token_logprobs, top_logprobs, text_offset); log-softmax of the model's raw logits, "
          "drafted tokens included; streamed per chunk"),
    Field("top_logprobs", CHAT, HONOURED, "0 to 20 alternatives per token (with logprobs)"),
    Field("response_format", CHAT, HONOURED, "text, json_object (any JSON object) or "
          "json_schema, enforced by llama.cpp grammar sampling (the answer parses and matches "
          "the schema, strict or not); schema keywords the grammar cannot enforce (minimum, "
          "patternProperties, remote $ref, unanchored pattern, …) are a 400 naming them"),
    Field("tools", CHAT, HONOURED, "functions rendered by the model's own chat template "
          "(a model whose template has none: a 400); the answer's <tool_call> blocks become "
          "message.tool_calls (streamed as delta.tool_calls), finish_reason tool_calls; "
          "tool messages and assistant tool_calls round-trip; not with a response_format"),
    Field("tool_choice", CHAT, HONOURED, "none (tools not offered), auto (default with "
          "tools), required or a named function (a grammar forces the call)"),
    Field("parallel_tool_calls", CHAT, HONOURED, "false: at most one call (the first; forced "
          "calls: one)"),
    Field("functions", CHAT, REFUSED, "deprecated by OpenAI for tools; send tools",
          neutral=([],)),
    Field("function_call", CHAT, REFUSED, "deprecated by OpenAI for tool_choice",
          neutral=("none",)),
    Field("user", BOTH, NO_OP, "an end-user id for abuse monitoring: OpenAI says it does not "
          "change the answer; checked (a string) and dropped"),
    Field("metadata", CHAT, NO_OP, "tags for stored completions: they do not change the "
          "answer; checked (an object of strings) and dropped"),
    Field("store", CHAT, REFUSED, "nothing is stored: `false` is honoured, `true` refused",
          neutral=(False,)),
    Field("service_tier", CHAT, REFUSED, "one tier: `auto` and `default` are honoured, "
          "others refused", neutral=("auto", "default")),
    Field("echo", COMPLETION, REFUSED, "the prompt is not echoed: `false` only",
          neutral=(False,)),
    Field("best_of", COMPLETION, REFUSED, "one candidate per request: `1` only", neutral=(1,)),
    Field("modalities", CHAT, REFUSED, "text only: `[\"text\"]` is honoured",
          neutral=(["text"],)),
    Field("audio", CHAT, REFUSED, "no audio output", orchestrator=REFUSED,
          orchestrator_why="no upstream of it produces audio"),
    Field("reasoning_effort", CHAT, REFUSED, "the models do not reason in hidden tokens"),
    Field("web_search_options", CHAT, REFUSED, "no web search", orchestrator=REFUSED,
          orchestrator_why="no web search"),
    Field("prediction", BOTH, HONOURED, "Predicted Outputs: drafted from by speculative "
          "decoding (accepted/rejected tokens in usage)",
          orchestrator=HONOURED, orchestrator_why="the client's sent as is; else, for an "
          "edit, the code the answer will repeat (cerebrum.prediction: false turns it off)"),
    Field("top_k", BOTH, HONOURED, "extension: 0 (off) to 2^31-1"),
    Field("min_p", BOTH, HONOURED, "extension: 0 to 1"),
    Field("repeat_penalty", BOTH, HONOURED, "extension: 0 to 10 (llama.cpp's)"),
    Field("speculative", BOTH, HONOURED, "extension: true/false turns drafting on/off for "
          "this request"),
    Field("cerebrum", BOTH, REFUSED, "the orchestrator's field: send it to the orchestrator",
          orchestrator=HONOURED, orchestrator_why="{context: auto|raw, prediction: bool}; "
          "not sent upstream"),
    Field("language", BOTH, REFUSED, "the orchestrator's field: send it to the orchestrator",
          orchestrator=HONOURED, orchestrator_why="routing by language; not sent upstream"),
)}


def _orchestrator(f: fieldtable.Field) -> str:
    why = f.orchestrator_why or ("sent upstream unchanged; the upstream honours or refuses it"
                                 if f.orchestrator == PASSED else "")
    return fieldtable.cell(str(f.orchestrator), why)


def markdown_table() -> str:
    """docs/openai-fields.md's "OpenAI request fields" table, one row per field."""
    return fieldtable.markdown_table(
        FIELDS.values(),
        lambda f: "both" if f.kinds == BOTH else "chat" if f.kinds == CHAT else "completions",
        _orchestrator)


if __name__ == "__main__":
    print(markdown_table(), end="")
