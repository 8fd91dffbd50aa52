"""Every request field of Anthropic's Messages API (`POST /v1/messages`) and of its token
count (`POST /v1/messages/count_tokens`), and what each tier does with it.

One row per field. A field is honoured; or a documented no-op (checked, then dropped:
Anthropic defines it as not changing the answer's text, or it asks for what these models
cannot do and doing without it is what the client would see anyway); or refused with a 400
naming it, unless its value asks for nothing (`neutral`). A field Anthropic does not define
is a 400 too. No tier passes an Anthropic body upstream as it came (no upstream of the
orchestrator speaks this format): both translate it into the internal request, so the
orchestrator refuses what the backend refuses, and acts on a few fields itself. To honour a
field: flip its row to HONOURED and read it in `request`. `python -m
cerebrum.anthropic.fields` prints the table of docs/anthropic-fields.md.
"""

from __future__ import annotations

from typing import Literal

from cerebrum import fieldtable
from cerebrum.fieldtable import HONOURED, NO_OP, REFUSED, Field, Tier

__all__ = ["FIELDS", "HONOURED", "NO_OP", "REFUSED", "Endpoint", "Field", "Tier"]

Endpoint = Literal["messages", "count_tokens"]

MESSAGES: frozenset[Endpoint] = frozenset({"messages"})
BOTH: frozenset[Endpoint] = frozenset({"messages", "count_tokens"})
PATHS: dict[Endpoint, str] = {"messages": "/v1/messages",
                              "count_tokens": "/v1/messages/count_tokens"}


FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("model", BOTH, HONOURED, "required; picks a model of the manifest (the tier maps "
          "names it does not serve, such as Claude's, as it maps any other)",
          orchestrator=HONOURED, orchestrator_why="routing: a route's model, or `auto`"),
    Field("messages", BOTH, HONOURED, "roles user, assistant and system (a system turn: "
          "in place, or, before the first assistant message, right after `system`, so a new "
          "session's prompt shares all but the date and the question with the last one's); "
          "content a string or blocks: text, tool_use, tool_result (a tool turn; "
          "is_error as an `Error: ` prefix), thinking (the assistant turn's reasoning), "
          "redacted_thinking (dropped: encrypted); image, document and server tools' blocks "
          "are a 400 naming them; text blocks are joined by a blank line; consecutive user "
          "or assistant turns are merged, as Anthropic merges them",
          orchestrator=HONOURED, orchestrator_why="translated to its upstream's messages; "
          "with tools or tool turns the conversation is sent as it is"),
    Field("system", BOTH, HONOURED, "a string or text blocks, joined by a blank line into "
          "the first turn; Claude Code's first line `x-anthropic-billing-header: cc_version="
          "…; cch=…;` (new on every request) is dropped, so the prompt prefix stays the same "
          "from one request to the next and the model's cache is reused"),
    Field("max_tokens", MESSAGES, HONOURED, "required, 1 or more; carried as asked and "
          "clipped by the tier to the room the context leaves (Claude Code asks 32000: a "
          "limit, not a wish, as Anthropic's models too may stop before it)",
          orchestrator=HONOURED, orchestrator_why="clipped to the route's context"),
    Field("stream", MESSAGES, HONOURED, "server-sent events: message_start, content blocks, "
          "message_delta, message_stop; ping while a long prompt is evaluated"),
    Field("stop_sequences", MESSAGES, HONOURED, "up to 16 strings of up to 256 characters; "
          "stop_reason `stop_sequence`"),
    Field("temperature", MESSAGES, HONOURED, "0 to 1 (Anthropic's range)"),
    Field("top_p", MESSAGES, HONOURED, "0 to 1"),
    Field("top_k", MESSAGES, HONOURED, "0 (off) to 2^31-1"),
    Field("tools", BOTH, HONOURED, "custom tools (name, description, input_schema, strict) "
          "rendered by the model's chat template; the answer's calls become tool_use blocks "
          "(stop_reason `tool_use`); Anthropic's server tools (web_search_…, web_fetch_…, "
          "code_execution_…, bash_…, text_editor_…, memory_…, tool_search_…) are a 400 "
          "naming them: this server cannot run them, and a client told so can fall back; "
          "cache_control and eager_input_streaming are no-ops; defer_loading true, "
          "input_examples and allowed_callers other than [\"direct\"] are a 400"),
    Field("tool_choice", BOTH, HONOURED, "auto, any (at least one call), tool (the one "
          "named), none (tools not offered); disable_parallel_tool_use: at most one call"),
    Field("thinking", BOTH, NO_OP, "enabled (budget_tokens 1024 or more, below max_tokens), "
          "adaptive, disabled or between_tools: checked and dropped; the models do not "
          "reason in hidden tokens, so an answer has no thinking blocks"),
    Field("output_config", BOTH, HONOURED, "format {type: json_schema, schema}: the answer "
          "is JSON matching the schema (llama.cpp grammar sampling); effort (low … max): a "
          "no-op, the models have one effort"),
    Field("context_management", BOTH, NO_OP, "edits (clear_thinking_…, clear_tool_uses_…, "
          "compact_…) are checked and not made: the conversation is used as sent; past the "
          "context the answer is Anthropic's `prompt is too long` error, on which Claude "
          "Code compacts the conversation itself"),
    Field("cache_control", BOTH, NO_OP, "here and on any block: checked and dropped; the "
          "server reuses the longest prompt prefix it holds by itself (usage "
          "cache_read_input_tokens)"),
    Field("metadata", MESSAGES, NO_OP, "{user_id}: it does not change the answer; the "
          "session id in it (Claude Code sends a JSON string with session_id) is carried as "
          "the request's cache key"),
    Field("service_tier", MESSAGES, NO_OP, "auto or standard_only: there is one tier"),
    Field("speed", BOTH, NO_OP, "standard or fast: there is one speed"),
    Field("inference_geo", MESSAGES, NO_OP, "inference runs where the server runs"),
    Field("diagnostics", MESSAGES, NO_OP, "{previous_message_id}: the answer carries no "
          "diagnostics"),
    Field("container", MESSAGES, REFUSED, "no code-execution containers", neutral=(None,)),
)}


def markdown_table() -> str:
    """docs/anthropic-fields.md's table, one row per field."""
    return fieldtable.markdown_table(FIELDS.values(),
                                     lambda f: "both" if f.kinds == BOTH else "messages")


if __name__ == "__main__":
    print(markdown_table(), end="")
