"""Every request field of OpenAI's Responses API, and what each tier does with it.

One row per field, as `cerebrum.openai.fields` has for chat. A field is honoured (translated
into the internal request), a no-op (OpenAI defines it as not changing the answer, or it asks
for something the answer has without it: checked, then dropped) or refused with a 400 naming
it; a refused field's `neutral` values ask for nothing, so they are honoured as they are.
Unknown fields are a 400 `unknown_parameter`.

Unlike chat, the orchestrator cannot pass a Responses field through: it translates the body
into the internal request and sends that upstream in the upstream's own format, so what the
internal request cannot carry is refused by both tiers alike. The orchestrator differs only
where it acts on a field itself (`model`, `input`, `max_output_tokens`, `stream`).
`python -m cerebrum.responses.fields` prints the table of docs/responses-fields.md.
"""

from __future__ import annotations

from typing import Literal

from cerebrum import fieldtable
from cerebrum.fieldtable import HONOURED, NO_OP, REFUSED, Field, Tier

__all__ = ["FIELDS", "HONOURED", "NO_OP", "REFUSED", "Field", "Kind", "Tier"]

Kind = Literal["create", "input_tokens"]  # POST /v1/responses, POST /v1/responses/input_tokens

CREATE: frozenset[Kind] = frozenset({"create"})
BOTH: frozenset[Kind] = frozenset({"create", "input_tokens"})
ENDPOINTS: dict[Kind, str] = {"create": "/v1/responses",
                              "input_tokens": "/v1/responses/input_tokens"}


# Not offered to the model: hosted tools only OpenAI's servers run, and client tools whose
# calls are items this server does not render (Codex's `tool_search`, deferred-tool
# discovery, answered by a `tool_search_call`; `namespace`: MCP and Codex's sub-agents).
DROPPED_TOOLS = ("namespace", "local_shell", "shell", "apply_patch", "web_search",
                 "web_search_preview", "image_generation", "file_search", "code_interpreter",
                 "computer_use_preview", "mcp", "tool_search")
_STORED = "nothing is stored: a response cannot be continued or fetched later; send the "\
    "whole conversation in `input`"

FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("model", BOTH, HONOURED, "picks a model of the manifest; absent: the first",
          orchestrator=HONOURED, orchestrator_why="routing: a route's model, or `auto`"),
    Field("instructions", BOTH, HONOURED, "a string: the conversation's leading system turn "
          "(empty: none)"),
    Field("input", BOTH, HONOURED, "a string (one user turn) or items: messages (roles user, "
          "system, developer, assistant; content a string or input_text/output_text parts; "
          "input_image, input_file and input_audio parts are a 400), reasoning (its summary "
          "text, else its reasoning_text, is the next assistant turn's `reasoning`; "
          "encrypted_content cannot be read and is dropped), function_call / "
          "custom_tool_call / local_shell_call (an assistant turn's tool calls; a custom "
          "call's input as it is; a local shell call as a call of `local_shell` with its "
          "action's JSON), function_call_output / custom_tool_call_output / "
          "local_shell_call_output (tool turns; text parts only). Refused with a 400 naming "
          "the item: web_search_call (its results exist only where the search ran), "
          "item_reference and compaction (stored or encrypted state)",
          orchestrator=HONOURED, orchestrator_why="as the backend; the context pipeline "
          "reduces the last user turn, as for chat"),
    Field("tools", BOTH, HONOURED, "`function` (name, description, parameters, strict) as a "
          "function; `custom` (free-form: description, format text or grammar) as a function "
          "with one string argument `input` (a grammar's definition is shown to the model in "
          "that argument's description, not enforced), its calls answered as "
          "custom_tool_call items; tools the server cannot run are not offered to the model "
          f"(dropped, so never called): {', '.join(DROPPED_TOOLS)}"),
    Field("tool_choice", BOTH, HONOURED, "auto, none, required, or {type: function|custom, "
          "name} of an offered tool; a hosted tool's type, or a dropped tool's name, is a 400"),
    Field("parallel_tool_calls", BOTH, HONOURED, "false: at most one call"),
    Field("text", BOTH, HONOURED, "format: text, json_object or json_schema (name, schema, "
          "strict, description), as chat's response_format; verbosity (low, medium, high): a "
          "no-op, the models have no such control"),
    Field("reasoning", BOTH, NO_OP, "effort and summary: the models do not reason in hidden "
          "tokens, so there is nothing to spend or summarise; checked and dropped"),
    Field("truncation", BOTH, REFUSED, "`disabled` is honoured (a conversation past the "
          "context fails with context_length_exceeded); `auto` (drop items from the start) is "
          "not implemented", neutral=("disabled",)),
    Field("previous_response_id", BOTH, REFUSED, _STORED),
    Field("conversation", BOTH, REFUSED, _STORED),
    Field("stream", CREATE, HONOURED, "server-sent events `event: <type>` / `data: {…}`, each "
          "with its sequence_number, ending in response.completed, response.incomplete "
          "(max_output_tokens reached) or response.failed",
          orchestrator=HONOURED, orchestrator_why="relayed; the upstream always streams"),
    Field("stream_options", CREATE, REFUSED, "include_obfuscation: the stream carries no "
          "obfuscation padding; `{\"include_obfuscation\": false}` is honoured",
          neutral=({"include_obfuscation": False}, {})),
    Field("store", CREATE, REFUSED, f"{_STORED}; `false` is honoured (absent: not stored "
          "either)", neutral=(False,)),
    Field("background", CREATE, REFUSED, "responses run while the request is open: `false` "
          "only", neutral=(False,)),
    Field("include", CREATE, HONOURED, "message.output_text.logprobs: the answer's logprobs "
          "(with top_logprobs alternatives); reasoning.encrypted_content and the hosted tools' "
          "outputs (web_search_call.*, file_search_call.results, code_interpreter_call.outputs,"
          " computer_call_output.output.image_url, message.input_image.image_url): no-ops, "
          "the answer holds no such items"),
    Field("prompt_cache_key", CREATE, HONOURED, "the client's key for its prompt prefix "
          "(the internal request's cache_key)"),
    Field("prompt_cache_retention", CREATE, REFUSED, "the prompt cache is in memory: "
          "`in_memory` is honoured, `24h` refused", neutral=("in_memory",)),
    Field("service_tier", CREATE, NO_OP, "one tier: any of auto, default, flex, scale, "
          "priority is accepted and the response says `default`"),
    Field("client_metadata", CREATE, NO_OP, "the client's own tags (Codex sends them): they "
          "do not change the answer; checked (an object of strings) and dropped"),
    Field("metadata", CREATE, NO_OP, "tags for stored responses: nothing is stored; checked "
          "(an object of up to 16 strings) and dropped"),
    Field("user", CREATE, NO_OP, "an end-user id for abuse monitoring: OpenAI says it does not "
          "change the answer; checked (a string) and dropped"),
    Field("safety_identifier", CREATE, NO_OP, "as user"),
    Field("temperature", CREATE, HONOURED, "0 to 2"),
    Field("top_p", CREATE, HONOURED, "0 to 1"),
    Field("max_output_tokens", CREATE, HONOURED, "1 to max_tokens_cap, and it must fit the "
          "context", orchestrator=HONOURED, orchestrator_why="checked against the route's "
          "context; always sent (the route's default when absent)"),
    Field("top_logprobs", CREATE, HONOURED, "0 to 20 alternatives per token, returned with "
          "include message.output_text.logprobs (without it there is nothing to return them "
          "in: checked and dropped)"),
    Field("max_tool_calls", CREATE, REFUSED, "no limit on a response's calls but "
          "parallel_tool_calls: false (one)"),
    Field("prompt", CREATE, REFUSED, "stored prompt templates: nothing is stored"),
)}


def markdown_table() -> str:
    """docs/responses-fields.md's table, one row per field."""
    return fieldtable.markdown_table(FIELDS.values(),
                                     lambda f: "both" if f.kinds == BOTH else "/v1/responses")


if __name__ == "__main__":
    print(markdown_table(), end="")
