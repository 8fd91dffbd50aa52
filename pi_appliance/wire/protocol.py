"""The orchestrator's side of the OpenAI wire format (pure): the internal request
(`cerebrum.openai.parse`) with the orchestrator's own fields, the conversation in the upstream
format (OpenAI's messages), and what is passed upstream as sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cerebrum import openai
from cerebrum.generation.request import Request
from cerebrum.languages import LANGUAGES
from cerebrum.openai import Kind
from cerebrum.openai import request as wire
from cerebrum.openai.errors import InvalidRequest

__all__ = ["ClientRequest", "Kind", "decode", "parse", "prediction_of"]

# Fields the orchestrator acts on itself; every other field goes upstream as the client sent
# it (`cerebrum.openai.fields`: the upstream honours or refuses it).
OWN = frozenset({"model", "messages", "prompt", "stream", "max_tokens",
                 "max_completion_tokens", "prediction", "cerebrum", "language"})


@dataclass(frozen=True)
class ClientRequest:
    """A validated completion request to the orchestrator."""

    kind: Kind
    model: str  # "auto" lets routing choose
    stream: bool
    language: str | None
    context: Literal["auto", "raw"]
    max_tokens: int | None
    messages: tuple[dict[str, Any], ...]  # chat: as sent, content normalised to text
    prompt: str  # completion: the prompt
    options: dict[str, Any]  # every other field, passed upstream unchanged
    prediction: dict[str, Any] | None = None  # the client's own `prediction`, forwarded as sent
    predict: bool = True  # cerebrum.prediction: false sends no prediction of ours
    sent_messages: tuple[Any, ...] = ()  # chat: the messages exactly as the client sent them
    sent_prompt: Any = None  # completion: the prompt exactly as sent (a string or [string])
    request: Request | None = None  # the internal request

    @property
    def content(self) -> str:
        """What the context pipeline reduces: the last user message (the turns before it
        are fitted around it: `pipeline.conversation`), or the prompt."""
        if self.kind == "completion":
            return self.prompt
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    @property
    def left_alone(self) -> str | None:
        """Why the context pipeline must not reduce this request, or None: tool calls refer
        to the whole conversation, and a response_format shapes the answer, not the prompt."""
        if self.options.get("tools") or self.options.get("functions"):
            return "the request offers tools: the conversation is sent as it is"
        if any(m["role"] == "tool" or m.get("tool_calls") for m in self.messages):
            return "the conversation holds tool calls: it is sent as it is"
        response_format = self.options.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") != "text":
            return "the request sets a response_format: the conversation is sent as it is"
        return None


def prediction_of(text: str) -> dict[str, Any]:
    """OpenAI's `prediction` (Predicted Outputs) for text the answer will largely repeat."""
    return {"type": "content", "content": text}


def decode(raw: bytes) -> dict[str, Any]:
    """A UTF-8 JSON object, or an InvalidRequest saying which of the three it is not."""
    return wire.json_object(openai.decode_json(raw))


def parse(kind: Kind, body: dict[str, Any], max_tokens_cap: int) -> ClientRequest:
    """Validate a chat or text completion request with Cerebrum's optional extra fields."""
    req = openai.parse(kind, body, max_tokens_cap, "orchestrator")
    language = body.get("language")
    if language is not None and language not in (*LANGUAGES, "auto"):
        raise InvalidRequest(f"'language' must be one of {', '.join(LANGUAGES)} or auto",
                             "language")
    extra = body.get("cerebrum", {})
    if not isinstance(extra, dict) or extra.get("context", "auto") not in ("auto", "raw"):
        raise InvalidRequest("'cerebrum' must be an object like {\"context\": \"auto\" | "
                             "\"raw\"}", "cerebrum")
    predict = extra.get("prediction", True)
    if not isinstance(predict, bool):
        raise InvalidRequest(f"'cerebrum.prediction' must be a boolean, got "
                             f"{wire.kind_of(predict)}", "cerebrum.prediction")
    if kind == "chat" and not any(t.role == "user" for t in req.turns):
        raise InvalidRequest("'messages' needs at least one user message", "messages")
    return ClientRequest(kind=kind, model=req.model or "auto", stream=req.stream,
                         language=None if language in (None, "auto") else language,
                         context=extra.get("context", "auto"), max_tokens=req.max_tokens,
                         messages=wire.messages(body, True) if kind == "chat" else (),
                         prompt=req.prompt,
                         options={k: v for k, v in body.items() if k not in OWN},
                         prediction=body.get("prediction"), predict=predict,
                         sent_messages=tuple(body.get("messages") or ()),
                         sent_prompt=body.get("prompt"), request=req)
