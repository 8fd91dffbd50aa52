"""OpenAI's streamed chunks (chat or text completion), as an upstream sends them, read back
as internal events (pure), for a client that asked in another format.

A choice's `finish_reason` comes before the usage (the last chunk, with
`stream_options.include_usage`), so finishes are held until the usage or the end (`end`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cerebrum.generation.events import (
    Event,
    Finish,
    TextDelta,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
            "function_call": "tool_calls", "content_filter": "stop"}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_of(value: Any) -> Usage | None:
    """OpenAI's usage object as the internal one (None when there is none)."""
    if not isinstance(value, dict):
        return None
    details = value.get("prompt_tokens_details")
    predicted = value.get("completion_tokens_details")
    details = details if isinstance(details, dict) else {}
    predicted = predicted if isinstance(predicted, dict) else {}
    return Usage(prompt_tokens=_int(value.get("prompt_tokens")),
                 completion_tokens=_int(value.get("completion_tokens")),
                 cached_tokens=_int(details.get("cached_tokens")),
                 accepted_prediction_tokens=_int(predicted.get("accepted_prediction_tokens")),
                 rejected_prediction_tokens=_int(predicted.get("rejected_prediction_tokens")))


@dataclass
class Reader:
    """Chunks in (`read`), events out; `end` when the stream is over."""

    usage: Usage | None = None
    finishes: dict[int, str] = field(default_factory=dict)  # choice → reason, held
    calls: dict[int, dict[int, bool]] = field(default_factory=dict)  # choice → call → open

    def read(self, chunk: dict[str, Any]) -> list[Event]:
        """The events of one chunk."""
        out: list[Event] = []
        self.usage = usage_of(chunk.get("usage")) or self.usage
        for i, choice in enumerate(chunk.get("choices") or []):
            if not isinstance(choice, dict):
                continue
            index = _int(choice.get("index", i))
            delta = choice.get("delta") if "delta" in choice else choice
            delta = delta if isinstance(delta, dict) else {}
            text = delta.get("content") if "delta" in choice else delta.get("text")
            if isinstance(text, str) and text:
                out.append(TextDelta(text, index))
            out += self._calls(index, delta.get("tool_calls"))
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                out += [ToolCallEnd(call, index) for call, open_ in
                        self.calls.get(index, {}).items() if open_]
                self.calls.get(index, {}).clear()
                self.finishes[index] = _REASONS.get(reason, "stop")
        if self.usage is not None and self.finishes and not chunk.get("choices"):
            out += self.end()
        return out

    def _calls(self, index: int, calls: Any) -> list[Event]:
        out: list[Event] = []
        opened = self.calls.setdefault(index, {})
        for j, call in enumerate(calls if isinstance(calls, list) else []):
            if not isinstance(call, dict):
                continue
            number = _int(call.get("index", j))
            fn = call.get("function") if isinstance(call.get("function"), dict) else {}
            if number not in opened:
                opened[number] = True
                out.append(ToolCallStart(number, str(call.get("id") or ""),
                                         str(fn.get("name") or ""), index))
            arguments = fn.get("arguments")
            if isinstance(arguments, str) and arguments:
                out.append(ToolCallArguments(number, arguments, index))
        return out

    def end(self) -> list[Event]:
        """The held finishes, the whole usage on the first (the prompt counted once)."""
        usage = self.usage or Usage(0, 0, 0)
        out: list[Event] = []
        for n, index in enumerate(sorted(self.finishes)):
            share = usage if n == 0 else Usage(usage.prompt_tokens, 0, usage.cached_tokens)
            out.append(Finish(self.finishes[index], share, index))  # type: ignore[arg-type]
        self.finishes.clear()
        return out
