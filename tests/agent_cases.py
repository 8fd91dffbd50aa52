"""The bad bodies of the agents' wire formats, one table per format, shared by the package
tests (tests/cerebrum/test_responses_wire.py, test_anthropic_wire.py: each refused by the
parser naming the param) and the HTTP tests of both tiers (tests/test_agent_bad_input.py: each
a 400 in the API's own shape)."""

from __future__ import annotations

from typing import Any

from cerebrum.responses.items import MAX_ITEMS

CAP = 4096  # the max_tokens_cap the tables are written for (both tiers' default)
MODEL = "qwen2.5-coder-0.5b-instruct"  # the model the Anthropic bodies name


# -- OpenAI's Responses API (cerebrum.responses) --------------------------------------------

BASE: dict[str, Any] = {"input": "hi"}
FN = {"type": "function", "name": "shell", "parameters": {"type": "object"}}
CUSTOM = {"type": "custom", "name": "apply_patch"}


def item(**fields: Any) -> dict[str, Any]:
    return {"input": [fields]}


# (what is wrong, the body, the param the 400 names); bodies without "input" get BASE's.
RESPONSES_BAD: list[tuple[str, Any, str | None]] = [
    ("body not an object", ["hi"], None),
    ("chat's messages", {"messages": [{"role": "user", "content": "hi"}]}, "messages"),
    ("a field of another API", {"max_tokens": 5}, "max_tokens"),
    ("empty model", {"model": ""}, "model"),
    ("instructions a number", {"instructions": 5}, "instructions"),
    ("input a number", {"input": 5}, "input"),
    ("nothing to answer", {"input": []}, "input"),
    ("too many items", {"input": [{"role": "user", "content": "x"}] * (MAX_ITEMS + 1)},
     "input"),
    ("an item not an object", {"input": ["hi"]}, "input[0]"),
    ("a tool role message", item(role="tool", content="x"), "input[0].role"),
    ("an image part", item(role="user", content=[
        {"type": "input_text", "text": "see"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]),
     "input[0].content[1]"),
    ("a file part", item(role="user", content=[{"type": "input_file", "file_id": "f"}]),
     "input[0].content[0]"),
    ("chat's text part", item(role="user", content=[{"type": "text", "text": "x"}]),
     "input[0].content[0]"),
    ("content a number", item(role="user", content=5), "input[0].content"),
    ("a message field not honoured", item(role="user", content="x", name="bob"), "input[0]"),
    ("a web search call", {"input": [{"role": "user", "content": "x"}, {
        "type": "web_search_call", "id": "ws_1", "status": "completed",
        "action": {"type": "search", "query": "x"}}]}, "input[1]"),
    ("an item reference", item(type="item_reference", id="msg_1"), "input[0]"),
    ("an unknown item type", item(type="computer_call", call_id="c"), "input[0]"),
    ("a call without call_id", item(type="function_call", name="f", arguments="{}"),
     "input[0].call_id"),
    ("arguments as an object", item(type="function_call", call_id="c", name="f",
                                     arguments={}), "input[0].arguments"),
    ("an output without call_id", item(type="function_call_output", output="x"),
     "input[0]"),
    ("an image in a call's output", item(type="function_call_output", call_id="c", output=[
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]),
     "input[0].output[0]"),
    ("a custom call's input not a string", item(type="custom_tool_call", call_id="c",
                                                 name="p", input=["x"]), "input[0].input"),
    ("a reasoning summary not an array", item(type="reasoning", summary="x"),
     "input[0].summary"),
    ("a reasoning summary part of another type", item(type="reasoning", summary=[
        {"type": "output_text", "text": "x"}]), "input[0].summary"),
    ("a local shell call without action", item(type="local_shell_call", call_id="c",
                                                status="completed"), "input[0]"),
    ("tools not an array", {"tools": {"type": "function"}}, "tools"),
    ("an unknown tool type", {"tools": [{"type": "retrieval"}]}, "tools[0].type"),
    ("a chat-style tool", {"tools": [{"type": "function", "function": {"name": "f"}}]},
     "tools[0]"),
    ("a tool name with a space", {"tools": [{**FN, "name": "run shell"}]}, "tools[0].name"),
    ("two tools of one name", {"tools": [FN, {**CUSTOM, "name": "shell"}]}, "tools[1].name"),
    ("parameters not an object", {"tools": [{**FN, "parameters": "{}"}]},
     "tools[0].parameters"),
    ("strict not a boolean", {"tools": [{**FN, "strict": "yes"}]}, "tools[0].strict"),
    ("a grammar of an unknown syntax", {"tools": [{**CUSTOM, "format": {
        "type": "grammar", "syntax": "gbnf", "definition": "root ::= x"}}]}, "tools[0].format"),
    ("tool_choice a word", {"tools": [FN], "tool_choice": "sometimes"}, "tool_choice"),
    ("tool_choice a hosted tool", {"tools": [FN], "tool_choice": {"type": "web_search"}},
     "tool_choice"),
    ("tool_choice a tool not offered", {"tools": [FN], "tool_choice": {
        "type": "function", "name": "get_time"}}, "tool_choice"),
    ("tool_choice custom naming a function", {"tools": [FN], "tool_choice": {
        "type": "custom", "name": "shell"}}, "tool_choice"),
    ("tool_choice chat-style", {"tools": [FN], "tool_choice": {
        "type": "function", "function": {"name": "shell"}}}, "tool_choice"),
    ("parallel_tool_calls a string", {"parallel_tool_calls": "no"}, "parallel_tool_calls"),
    ("store true", {"store": True}, "store"),
    ("previous_response_id", {"previous_response_id": "resp_1"}, "previous_response_id"),
    ("conversation", {"conversation": "conv_1"}, "conversation"),
    ("background true", {"background": True}, "background"),
    ("truncation auto", {"truncation": "auto"}, "truncation"),
    ("stream_options obfuscation", {"stream": True, "stream_options": {
        "include_obfuscation": True}}, "stream_options"),
    ("prompt_cache_retention 24h", {"prompt_cache_retention": "24h"},
     "prompt_cache_retention"),
    ("max_tool_calls", {"max_tool_calls": 3}, "max_tool_calls"),
    ("a stored prompt", {"prompt": {"id": "pmpt_1"}}, "prompt"),
    ("reasoning a string", {"reasoning": "high"}, "reasoning"),
    ("an unknown effort", {"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ("an unknown summary", {"reasoning": {"summary": "long"}}, "reasoning.summary"),
    ("include not an array", {"include": "reasoning.encrypted_content"}, "include"),
    ("an unknown include", {"include": ["message.output_text.tokens"]}, "include"),
    ("text not an object", {"text": "json"}, "text"),
    ("an unknown text format", {"text": {"format": {"type": "xml"}}}, "text.format"),
    ("chat's response_format shape", {"text": {"format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}}, "text.format"),
    ("a json_schema without name", {"text": {"format": {
        "type": "json_schema", "schema": {}}}}, "text.format.name"),
    ("a json_schema schema not an object", {"text": {"format": {
        "type": "json_schema", "name": "x", "schema": []}}}, "text.format.schema"),
    ("an unknown verbosity", {"text": {"verbosity": "loud"}}, "text.verbosity"),
    ("temperature over 2", {"temperature": 3}, "temperature"),
    ("top_p below 0", {"top_p": -0.1}, "top_p"),
    ("max_output_tokens 0", {"max_output_tokens": 0}, "max_output_tokens"),
    ("max_output_tokens over the cap", {"max_output_tokens": CAP + 1}, "max_output_tokens"),
    ("max_output_tokens a string", {"max_output_tokens": "5"}, "max_output_tokens"),
    ("top_logprobs over 20", {"top_logprobs": 21}, "top_logprobs"),
    ("prompt_cache_key a number", {"prompt_cache_key": 5}, "prompt_cache_key"),
    ("metadata of numbers", {"metadata": {"k": 1}}, "metadata"),
    ("client_metadata an array", {"client_metadata": ["x"]}, "client_metadata"),
    ("user a number", {"user": 5}, "user"),
    ("an unknown service tier", {"service_tier": "turbo"}, "service_tier"),
    ("stream a string", {"stream": "yes"}, "stream"),
]


# -- Anthropic's Messages API (cerebrum.anthropic) ------------------------------------------

GOOD: dict[str, Any] = {"model": MODEL, "max_tokens": 64,
                        "messages": [{"role": "user", "content": "hi"}]}
WEATHER = {"name": "get_weather", "input_schema": {"type": "object"}}
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}


def user(*blocks: Any) -> dict[str, Any]:
    return {**GOOD, "messages": [{"role": "user", "content": list(blocks)}]}


def assistant(*blocks: Any) -> dict[str, Any]:
    return {**GOOD, "messages": [{"role": "user", "content": "hi"},
                                 {"role": "assistant", "content": list(blocks)}]}


# (name, body, the param the 400 names, a word the message must hold)
MESSAGES_BAD: list[tuple[str, Any, str | None, str]] = [
    ("not_an_object", [GOOD], None, "JSON object"),
    ("unknown_field", {**GOOD, "frequency_penalty": 1}, "frequency_penalty", "unknown"),
    ("no_model", {k: v for k, v in GOOD.items() if k != "model"}, "model", "required"),
    ("empty_model", {**GOOD, "model": ""}, "model", "model"),
    ("no_max_tokens", {k: v for k, v in GOOD.items() if k != "max_tokens"}, "max_tokens",
     "required"),
    ("zero_max_tokens", {**GOOD, "max_tokens": 0}, "max_tokens", "between"),
    ("string_max_tokens", {**GOOD, "max_tokens": "10"}, "max_tokens", "integer"),
    ("no_messages", {k: v for k, v in GOOD.items() if k != "messages"}, "messages",
     "required"),
    ("empty_messages", {**GOOD, "messages": []}, "messages", "non-empty"),
    ("tool_role", {**GOOD, "messages": [{"role": "tool", "content": "x"}]}, "messages",
     "role"),
    ("message_extra_key", {**GOOD, "messages": [{"role": "user", "content": "x",
                                                 "name": "bob"}]}, "messages", "name"),
    ("content_number", {**GOOD, "messages": [{"role": "user", "content": 5}]}, "messages",
     "content"),
    ("empty_user_content", {**GOOD, "messages": [{"role": "user", "content": ""}]},
     "messages", "empty"),
    ("image_block", user(IMAGE), "messages", "image"),
    ("document_block", user({"type": "document", "source": {"type": "text", "data": "x"}}),
     "messages", "document"),
    ("tool_use_from_user", user({"type": "tool_use", "id": "t", "name": "n", "input": {}}),
     "messages", "tool_use"),
    ("tool_result_from_assistant", assistant({"type": "tool_result", "tool_use_id": "t"}),
     "messages", "tool_result"),
    ("server_tool_use_block", assistant({"type": "server_tool_use", "id": "s",
                                          "name": "web_search", "input": {}}),
     "messages", "server_tool_use"),
    ("tool_use_input_string", assistant({"type": "tool_use", "id": "t", "name": "n",
                                          "input": "{}"}), "messages", "input"),
    ("tool_use_no_id", assistant({"type": "tool_use", "name": "n", "input": {}}),
     "messages", "id"),
    ("tool_result_no_id", user({"type": "tool_result", "content": "x"}), "messages",
     "tool_use_id"),
    ("tool_result_image", user({"type": "tool_result", "tool_use_id": "t",
                                 "content": [IMAGE]}), "messages", "image"),
    ("tool_result_is_error_string", user({"type": "tool_result", "tool_use_id": "t",
                                           "is_error": "yes"}), "messages", "is_error"),
    ("text_block_extra_key", user({"type": "text", "text": "x", "bold": True}), "messages",
     "bold"),
    ("text_block_number", user({"type": "text", "text": 5}), "messages", "text"),
    ("bad_cache_control", user({"type": "text", "text": "x",
                                 "cache_control": {"type": "persistent"}}), "messages",
     "cache_control"),
    ("thinking_without_text", assistant({"type": "thinking", "signature": "s"}), "messages",
     "thinking"),
    ("redacted_thinking_number", assistant({"type": "redacted_thinking", "data": 5}),
     "messages", "data"),
    ("system_number", {**GOOD, "system": 5}, "system", "system"),
    ("system_image", {**GOOD, "system": [IMAGE]}, "system", "image"),
    ("tools_object", {**GOOD, "tools": WEATHER}, "tools", "array"),
    ("tool_no_schema", {**GOOD, "tools": [{"name": "get_weather"}]}, "tools", "input_schema"),
    ("tool_schema_not_object", {**GOOD, "tools": [{"name": "t", "input_schema": {
        "type": "string"}}]}, "tools", "input_schema"),
    ("web_search_tool", {**GOOD, "tools": [{"type": "web_search_20250305",
                                            "name": "web_search", "max_uses": 5}]}, "tools",
     "web_search_20250305"),
    ("bash_tool", {**GOOD, "tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools",
     "bash_20250124"),
    ("text_editor_tool", {**GOOD, "tools": [{"type": "text_editor_20250728",
                                             "name": "str_replace_based_edit_tool"}]},
     "tools", "text_editor_20250728"),
    ("tool_twice", {**GOOD, "tools": [WEATHER, WEATHER]}, "tools", "twice"),
    ("tool_name_space", {**GOOD, "tools": [{**WEATHER, "name": "get weather"}]}, "tools",
     "name"),
    ("tool_defer_loading", {**GOOD, "tools": [{**WEATHER, "defer_loading": True}]}, "tools",
     "defer_loading"),
    ("tool_choice_openai_style", {**GOOD, "tools": [WEATHER], "tool_choice": "required"},
     "tool_choice", "auto"),
    ("tool_choice_unknown_tool", {**GOOD, "tools": [WEATHER],
                                  "tool_choice": {"type": "tool", "name": "get_time"}},
     "tool_choice", "get_time"),
    ("tool_choice_any_no_tools", {**GOOD, "tool_choice": {"type": "any"}}, "tool_choice",
     "tools"),
    ("tool_choice_none_parallel", {**GOOD, "tools": [WEATHER], "tool_choice": {
        "type": "none", "disable_parallel_tool_use": True}}, "tool_choice",
     "disable_parallel_tool_use"),
    ("thinking_small_budget", {**GOOD, "thinking": {"type": "enabled", "budget_tokens": 100}},
     "thinking", "1024"),
    ("thinking_budget_over_max", {**GOOD, "max_tokens": 2000, "thinking": {
        "type": "enabled", "budget_tokens": 2000}}, "thinking", "max_tokens"),
    ("thinking_type", {**GOOD, "thinking": {"type": "on"}}, "thinking", "adaptive"),
    ("temperature_above_one", {**GOOD, "temperature": 1.5}, "temperature", "between"),
    ("top_p_negative", {**GOOD, "top_p": -0.1}, "top_p", "between"),
    ("top_k_negative", {**GOOD, "top_k": -1}, "top_k", "between"),
    ("stop_sequences_string", {**GOOD, "stop_sequences": "END"}, "stop_sequences", "array"),
    ("stop_sequences_empty_string", {**GOOD, "stop_sequences": [""]}, "stop_sequences",
     "non-empty"),
    ("stream_string", {**GOOD, "stream": "yes"}, "stream", "boolean"),
    ("metadata_other_key", {**GOOD, "metadata": {"user": "x"}}, "metadata", "user_id"),
    ("service_tier_priority", {**GOOD, "service_tier": "priority"}, "service_tier",
     "standard_only"),
    ("effort_unknown", {**GOOD, "output_config": {"effort": "extreme"}}, "output_config",
     "effort"),
    ("output_format_json_object", {**GOOD, "output_config": {"format": {
        "type": "json_object"}}}, "output_config", "json_schema"),
    ("container", {**GOOD, "container": "container_1"}, "container", "container"),
    ("context_management_string", {**GOOD, "context_management": {"edits": "all"}},
     "context_management", "edits"),
    ("speed_slow", {**GOOD, "speed": "slow"}, "speed", "fast"),
    ("diagnostics_string", {**GOOD, "diagnostics": "x"}, "diagnostics", "previous_message_id"),
    ("top_level_cache_control", {**GOOD, "cache_control": {"type": "x"}}, "cache_control",
     "ephemeral"),
]

