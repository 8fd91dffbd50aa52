"""A streamed completion folded into the body the same request without `stream` gets (pure):
every choice (`n`), content, refusals, tool calls assembled from their fragments, logprobs,
finish reasons and usage, as OpenAI's streams and bodies define them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_ENVELOPE = ("id", "created", "model", "system_fingerprint", "service_tier")


@dataclass
class _Choice:
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    logprobs: dict[str, list[Any]] | None = None
    finish_reason: str | None = None

    def add_logprobs(self, logprobs: Any) -> None:
        if not isinstance(logprobs, dict):
            return
        self.logprobs = self.logprobs or {}
        for key, values in logprobs.items():
            if isinstance(values, list):
                self.logprobs.setdefault(key, []).extend(values)

    def add_tool_calls(self, calls: Any) -> None:
        for i, call in enumerate(calls if isinstance(calls, list) else []):
            if not isinstance(call, dict):
                continue
            index = call.get("index", i)
            into = self.tool_calls.setdefault(index, {"id": None, "type": "function",
                                                      "function": {"name": "", "arguments": ""}})
            for key in ("id", "type"):
                if call.get(key) is not None:
                    into[key] = call[key]
            function = call.get("function") or {}
            if function.get("name"):
                into["function"]["name"] += function["name"]
            if function.get("arguments"):
                into["function"]["arguments"] += function["arguments"]


@dataclass
class Folder:
    """Chunks in, one body out (`body()`); chat or text completion, by the chunks' object."""

    envelope: dict[str, Any] = field(default_factory=dict)
    choices: dict[int, _Choice] = field(default_factory=dict)
    chat: bool = True
    usage: Any = None

    def add(self, chunk: dict[str, Any]) -> None:
        """Take one streamed chunk."""
        for key in _ENVELOPE:
            if chunk.get(key) is not None:
                self.envelope.setdefault(key, chunk[key])
        self.chat = str(chunk.get("object", "chat")).startswith("chat")
        if chunk.get("usage") is not None:
            self.usage = chunk["usage"]
        for i, choice in enumerate(chunk.get("choices") or []):
            if not isinstance(choice, dict):
                continue
            into = self.choices.setdefault(choice.get("index", i), _Choice())
            delta = choice.get("delta") if self.chat else choice
            delta = delta if isinstance(delta, dict) else {}
            if isinstance(delta.get("content" if self.chat else "text"), str):
                into.text.append(delta["content" if self.chat else "text"])
            if isinstance(delta.get("refusal"), str):
                into.refusal.append(delta["refusal"])
            into.add_tool_calls(delta.get("tool_calls"))
            into.add_logprobs(choice.get("logprobs"))
            into.finish_reason = choice.get("finish_reason") or into.finish_reason

    def body(self) -> dict[str, Any]:
        """The non-streamed response."""
        out = {"id": self.envelope.get("id"),
               "object": "chat.completion" if self.chat else "text_completion",
               **{k: self.envelope.get(k) for k in _ENVELOPE[1:] if k in self.envelope}}
        out["choices"] = [self._choice(i, c) for i, c in sorted(self.choices.items())]
        out["usage"] = self.usage
        return out

    def _choice(self, index: int, c: _Choice) -> dict[str, Any]:
        text = "".join(c.text)
        if not self.chat:
            return {"index": index, "text": text, "logprobs": c.logprobs,
                    "finish_reason": c.finish_reason}
        message: dict[str, Any] = {"role": "assistant",
                                   "content": text if text or not c.tool_calls else None}
        if c.refusal:
            message["refusal"] = "".join(c.refusal)
        if c.tool_calls:
            message["tool_calls"] = [c.tool_calls[i] for i in sorted(c.tool_calls)]
        return {"index": index, "message": message, "logprobs": c.logprobs,
                "finish_reason": c.finish_reason}
