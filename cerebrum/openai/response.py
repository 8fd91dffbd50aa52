"""OpenAI response shapes: usage, the chunks and bodies of completions, SSE framing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cerebrum.generation.events import Usage
from cerebrum.jsonwire import sse_event

from .fields import Kind


def usage_dict(usage: Usage) -> dict[str, Any]:
    """OpenAI's usage object: cached prompt tokens in prompt_tokens_details, drafted tokens
    accepted and rejected in completion_tokens_details (Predicted Outputs)."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {
            "accepted_prediction_tokens": usage.accepted_prediction_tokens,
            "rejected_prediction_tokens": usage.rejected_prediction_tokens,
        },
    }


@dataclass(frozen=True)
class Envelope:
    """What every chunk or body of one response shares."""

    kind: Kind
    request_id: str
    model: str
    created: int
    system_fingerprint: str | None = None

    @classmethod
    def new(cls, kind: Kind, request_id: str, model: str,
            system_fingerprint: str | None = None) -> Envelope:
        """An envelope stamped now."""
        return cls(kind, request_id, model, int(time.time()), system_fingerprint)

    @property
    def id(self) -> str:
        """The response id carries the request id, so logs and clients can be matched."""
        return f"{'chatcmpl' if self.kind == 'chat' else 'cmpl'}-{self.request_id}"

    def _base(self, obj: str) -> dict[str, Any]:
        out = {"id": self.id, "object": obj, "created": self.created, "model": self.model}
        if self.system_fingerprint is not None:
            out["system_fingerprint"] = self.system_fingerprint
        return out

    def chunk(self, text: str | None, *, finish_reason: str | None = None,
              usage: Usage | None = None, first: bool = False, index: int = 0,
              logprobs: dict[str, Any] | None = None,
              tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """One streamed chunk of choice `index`: a token's text (with its logprobs, or tool
        call fragments), or (text None) the closing chunk."""
        if self.kind == "chat":
            delta: dict[str, Any] = {}
            if first:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            if tool_calls:
                delta["tool_calls"] = tool_calls
            choice: dict[str, Any] = {"index": index, "delta": delta,
                                      "finish_reason": finish_reason}
            if logprobs is not None:
                choice["logprobs"] = logprobs
            out = self._base("chat.completion.chunk")
        else:
            choice = {"index": index, "text": text or "", "logprobs": logprobs,
                      "finish_reason": finish_reason}
            out = self._base("text_completion")
        out["choices"] = [choice]
        if usage is not None:
            out["usage"] = usage_dict(usage)
        return out

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        """The last chunk of a stream with `stream_options.include_usage`: no choices, the
        usage of the whole request."""
        out = self._base("chat.completion.chunk" if self.kind == "chat" else "text_completion")
        out["choices"] = []
        out["usage"] = usage_dict(usage)
        return out

    def choice(self, text: str | None, finish_reason: str, *, index: int = 0,
               logprobs: dict[str, Any] | None = None,
               tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """One choice of a non-streamed response."""
        if self.kind == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if tool_calls:
                message["tool_calls"] = tool_calls
            out = {"index": index, "finish_reason": finish_reason, "message": message}
            if logprobs is not None:
                out["logprobs"] = logprobs
            return out
        return {"index": index, "text": text or "", "logprobs": logprobs,
                "finish_reason": finish_reason}

    def body(self, text: str, finish_reason: str, usage: Usage, *,
             choices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The whole non-streamed response (`choices` built with `choice`, else one)."""
        out = self._base("chat.completion" if self.kind == "chat" else "text_completion")
        out["choices"] = choices if choices is not None else [self.choice(text, finish_reason)]
        out["usage"] = usage_dict(usage)
        return out


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event line pair, compact JSON (cerebrum.jsonwire)."""
    return sse_event(data)
