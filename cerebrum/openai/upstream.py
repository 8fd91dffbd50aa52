"""The internal request as a Chat Completions body (pure): what an upstream that speaks
OpenAI's format gets for a request that came in another format (Responses, Messages).

Every field the internal request carries is written; llama.cpp's own extensions (`top_k`,
`min_p`, `repeat_penalty`) are llama-server's too. A free-form tool goes as a function with
one string argument, `input`, as the backend offers it. Always streamed, with the usage."""

from __future__ import annotations

from typing import Any

from cerebrum.generation.request import Output, Request, Tool, ToolChoice

from .request import chat_messages

_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty",
             "frequency_penalty", "seed")


def _tool(tool: Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        fn["description"] = tool.description
    if tool.parameters is not None:
        fn["parameters"] = tool.parameters
    if tool.strict is not None:
        fn["strict"] = tool.strict
    return {"type": "function", "function": fn}


def _choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "named":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _format(output: Output) -> dict[str, Any]:
    if output.type != "json_schema":
        return {"type": output.type}
    spec: dict[str, Any] = {"name": output.name or "answer", "strict": output.strict}
    if output.schema is not None:
        spec["schema"] = output.schema
    if output.description is not None:
        spec["description"] = output.description
    return {"type": "json_schema", "json_schema": spec}


def chat_body(req: Request) -> dict[str, Any]:
    """The Chat Completions body for `req` (a conversation), streamed with its usage."""
    body: dict[str, Any] = {"messages": chat_messages(req.turns), "stream": True,
                            "stream_options": {"include_usage": True}}
    if req.model is not None:
        body["model"] = req.model
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.stop:
        body["stop"] = list(req.stop)
    for key in _SAMPLING:
        value = getattr(req.sampling, key)
        if value is not None:
            body[key] = value
    if req.sampling.logit_bias:
        body["logit_bias"] = {str(token): bias for token, bias in req.sampling.logit_bias}
    if req.tools:
        body["tools"] = [_tool(t) for t in req.tools]
        body["tool_choice"] = _choice(req.choice)
        if not req.parallel_tool_calls:
            body["parallel_tool_calls"] = False
    if req.output.type != "text":
        body["response_format"] = _format(req.output)
    if req.logprobs:
        body["logprobs"] = True
        if req.top_logprobs:
            body["top_logprobs"] = req.top_logprobs
    if req.n != 1:
        body["n"] = req.n
    if req.prediction:
        body["prediction"] = {"type": "content", "content": req.prediction}
    if req.speculative is not None:
        body["speculative"] = req.speculative
    return body
