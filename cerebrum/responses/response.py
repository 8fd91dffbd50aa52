"""Responses API shapes (pure): the response object with the request's settings echoed, its
output items, usage, the input_tokens body, and SSE framing (`event:` and `data:` lines)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cerebrum.generation.events import Usage
from cerebrum.generation.request import Request, Tool, ToolChoice
from cerebrum.jsonwire import dumps


def usage_dict(usage: Usage) -> dict[str, Any]:
    """The Responses usage object: cached prompt tokens in input_tokens_details; no reasoning
    tokens (the models reason in none)."""
    return {"input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens},
            "output_tokens": usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}


def input_tokens_body(count: int) -> dict[str, Any]:
    """`POST /v1/responses/input_tokens`'s answer: the prompt's token count."""
    return {"object": "response.input_tokens", "input_tokens": count}


def _tool(tool: Tool) -> dict[str, Any]:
    if tool.freeform:
        return {"type": "custom", "name": tool.name, "description": tool.description}
    return {"type": "function", "name": tool.name, "description": tool.description,
            "parameters": tool.parameters, "strict": tool.strict}


def _choice(choice: ToolChoice, tools: tuple[Tool, ...]) -> str | dict[str, Any]:
    if choice.mode != "named":
        return choice.mode
    freeform = any(t.freeform and t.name == choice.name for t in tools)
    return {"type": "custom" if freeform else "function", "name": choice.name}


def _text(request: Request) -> dict[str, Any]:
    out = request.output
    if out.type != "json_schema":
        return {"format": {"type": out.type}, "verbosity": "medium"}
    return {"format": {"type": "json_schema", "name": out.name, "schema": out.schema,
                       "strict": out.strict, "description": out.description},
            "verbosity": "medium"}


def echo(request: Request) -> dict[str, Any]:
    """The request's settings as a response object repeats them."""
    return {"instructions": None, "max_output_tokens": request.max_tokens,
            "parallel_tool_calls": request.parallel_tool_calls,
            "prompt_cache_key": request.cache_key, "reasoning": {"effort": None,
                                                                 "summary": None},
            "temperature": request.sampling.temperature, "text": _text(request),
            "tool_choice": _choice(request.choice, request.tools),
            "tools": [_tool(t) for t in request.tools], "top_logprobs": request.top_logprobs,
            "top_p": request.sampling.top_p}


@dataclass(frozen=True)
class Envelope:
    """What every event and body of one response shares: its id, model, time, the names of
    its free-form tools and the request's settings it echoes."""

    request_id: str
    model: str
    created_at: int
    freeform: frozenset[str]
    settings: tuple[tuple[str, Any], ...]  # echo(request), frozen

    @classmethod
    def new(cls, request: Request, request_id: str, model: str) -> Envelope:
        """The envelope of `request`'s response, stamped now."""
        return cls(request_id, model, int(time.time()),
                   frozenset(t.name for t in request.tools if t.freeform),
                   tuple(echo(request).items()))

    @property
    def id(self) -> str:
        """The response id carries the request id, so logs and clients can be matched."""
        return f"resp_{self.request_id}"

    def item_id(self, prefix: str, output_index: int) -> str:
        """An output item's id: msg_, fc_ or ctc_, the request id, its place."""
        return f"{prefix}_{self.request_id}_{output_index}"

    def response(self, status: str, output: list[dict[str, Any]], *,
                 usage: Usage | None = None, error: dict[str, Any] | None = None,
                 incomplete: str | None = None) -> dict[str, Any]:
        """The response object: in_progress, completed, incomplete (why) or failed (error)."""
        return {"id": self.id, "object": "response", "created_at": self.created_at,
                "status": status, "background": False, "error": error,
                "incomplete_details": None if incomplete is None else {"reason": incomplete},
                "model": self.model, "output": output, "previous_response_id": None,
                "service_tier": "default", "store": False, "truncation": "disabled",
                "usage": None if usage is None else usage_dict(usage), "user": None,
                "metadata": {}, **dict(self.settings)}


def sse(name: str, payload: dict[str, Any]) -> bytes:
    """One server-sent event: `event: <type>` and `data: <compact JSON>`."""
    return f"event: {name}\ndata: {dumps(payload)}\n\n".encode()
