"""The orchestrator's OpenAI-compatible requests (pure): validation and the forwarded payload."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cerebrum import openai

from .errors import BadRequest
from .settings import LANGUAGES

Kind = Literal["chat", "completion"]
MAX_MESSAGES = 1024  # a conversation longer than this is a client bug, not a prompt
MAX_STOPS = 4  # OpenAI's limit
_ROLES = ("system", "user", "assistant", "tool", "developer")
# Fields passed through to the backend as they are, once checked.
_NUMBERS = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "min_p": (0.0, 1.0),
            "repeat_penalty": (0.0, 10.0), "presence_penalty": (-2.0, 2.0),
            "frequency_penalty": (-2.0, 2.0)}


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
    options: dict[str, Any]  # sampling fields forwarded unchanged
    prediction: dict[str, Any] | None = None  # the client's own `prediction`, forwarded as sent
    predict: bool = True  # cerebrum.prediction: false sends no prediction of ours

    @property
    def content(self) -> str:
        """What the context pipeline works on: the last user message, or the prompt."""
        if self.kind == "completion":
            return self.prompt
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


def prediction_of(text: str) -> dict[str, Any]:
    """OpenAI's `prediction` (Predicted Outputs) for text the answer will largely repeat."""
    return {"type": "content", "content": text}


def decode(raw: bytes) -> dict[str, Any]:
    """A UTF-8 JSON object, or a 400 saying which of the three it is not."""
    try:
        body = openai.decode_json(raw)
    except openai.InvalidBody as exc:
        raise BadRequest(str(exc), code=exc.code) from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _kind_of(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), "value")


def _text(content: Any, i: int) -> str:
    text = openai.text_parts(content)
    if text is None:
        raise BadRequest(f"messages[{i}].content must be a string or an array of text parts",
                         param="messages")
    return text


def _messages(body: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is required: a non-empty array of {role, content}",
                         param="messages")
    if len(messages) > MAX_MESSAGES:
        raise BadRequest(f"'messages' has {len(messages)} entries, over the limit of "
                         f"{MAX_MESSAGES}", param="messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise BadRequest(f"messages[{i}] must be an object", param="messages")
        if m.get("role") not in _ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {', '.join(_ROLES)}",
                             param="messages")
        content = "" if m.get("content") is None and m["role"] == "assistant" else m.get("content")
        out.append({"role": m["role"], "content": _text(content, i)})
    if not any(m["role"] == "user" for m in out):
        raise BadRequest("'messages' needs at least one user message", param="messages")
    return tuple(out)


def _options(body: dict[str, Any], max_tokens_cap: int) -> tuple[int | None, dict[str, Any]]:
    options: dict[str, Any] = {}
    for key, (lo, hi) in _NUMBERS.items():
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"'{key}' must be a number, got {_kind_of(value)}", param=key)
        if not lo <= value <= hi:
            raise BadRequest(f"'{key}' must be between {lo} and {hi}, got {value}", param=key)
        options[key] = value
    for key in ("seed", "top_k"):
        value = body.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise BadRequest(f"'{key}' must be an integer, got {_kind_of(value)}", param=key)
            options[key] = value
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or len(stops) > MAX_STOPS or not all(
                isinstance(s, str) and s for s in stops):
            raise BadRequest(f"'stop' must be a non-empty string or an array of up to "
                             f"{MAX_STOPS} non-empty strings", param="stop")
        options["stop"] = stops
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise BadRequest(f"'max_tokens' must be an integer, got {_kind_of(max_tokens)}",
                             param="max_tokens")
        if not 1 <= max_tokens <= max_tokens_cap:
            raise BadRequest(f"'max_tokens' must be between 1 and {max_tokens_cap}, "
                             f"got {max_tokens}", param="max_tokens")
    if body.get("n", 1) != 1:
        raise BadRequest("'n' must be 1: one choice per request is supported", param="n")
    return max_tokens, options


def parse(kind: Kind, body: dict[str, Any], max_tokens_cap: int) -> ClientRequest:
    """Validate a chat or text completion request with Cerebrum's optional extra fields."""
    model = body.get("model", "auto")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' must be a non-empty string ('auto' lets routing choose)",
                         param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest(f"'stream' must be a boolean, got {_kind_of(stream)}", param="stream")
    language = body.get("language")
    if language is not None and language not in (*LANGUAGES, "auto"):
        raise BadRequest(f"'language' must be one of {', '.join(LANGUAGES)} or auto",
                         param="language")
    extra = body.get("cerebrum", {})
    if not isinstance(extra, dict) or extra.get("context", "auto") not in ("auto", "raw"):
        raise BadRequest("'cerebrum' must be an object like {\"context\": \"auto\" | \"raw\"}",
                         param="cerebrum")
    predict = extra.get("prediction", True)
    if not isinstance(predict, bool):
        raise BadRequest(f"'cerebrum.prediction' must be a boolean, got {_kind_of(predict)}",
                         param="cerebrum.prediction")
    prediction = body.get("prediction")
    if prediction is not None and openai.prediction_text(prediction) is None:
        raise BadRequest("'prediction' must be {\"type\": \"content\", \"content\": a string or "
                         "an array of text parts}", param="prediction")
    messages: tuple[dict[str, Any], ...] = ()
    prompt = ""
    if kind == "chat":
        messages = _messages(body)
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str) or not prompt:
            raise BadRequest("'prompt' is required: a non-empty string", param="prompt")
    max_tokens, options = _options(body, max_tokens_cap)
    return ClientRequest(kind=kind, model=model, stream=stream,
                         language=None if language in (None, "auto") else language,
                         context=extra.get("context", "auto"), max_tokens=max_tokens,
                         messages=messages, prompt=prompt, options=options,
                         prediction=prediction, predict=predict)
