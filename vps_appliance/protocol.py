"""OpenAI wire format (pure): request validation into typed requests, and response shapes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from cerebrum import openai

from .errors import BadRequest, ContextLengthExceeded
from .settings import Sampling

Kind = Literal["chat", "completion"]
_ROLES = ("system", "user", "assistant", "tool", "developer")
_MAX_STOPS = 4  # OpenAI's limit
# Fill in the middle (/infill, completions with suffix): editors send their FIM template's
# stops (Continue's Qwen template with its common stops: 12); llama-server sets no limit.
MAX_FIM_STOPS = 16
_MAX_STOP_CHARS = 256  # the stop scanner holds back up to this much text per token
_MAX_MESSAGES = 1024  # far beyond any context window; bounds the chat template's work
_MAX_TOP_K = 2**31 - 1  # llama.cpp reads it as a C int


@dataclass(frozen=True)
class GenerationParams:
    """Sampling and length for one generation, after defaults are applied."""

    max_tokens: int | None  # None: the model's default, clipped to the free context
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    stop: tuple[str, ...]
    seed: int | None


@dataclass(frozen=True)
class CompletionRequest:
    """A validated /v1/chat/completions or /v1/completions request."""

    kind: Kind
    model: str | None
    stream: bool
    params: GenerationParams
    messages: tuple[dict[str, str], ...] = ()
    prompt: str = ""
    suffix: str | None = None  # /v1/completions: fill in the middle between prompt and suffix
    prediction: str = ""  # OpenAI's Predicted Outputs: text the answer will largely repeat
    speculative: bool | None = None  # None: the model's default


@dataclass(frozen=True)
class TokenizeRequest:
    """A validated /v1/tokenize request."""

    model: str | None
    text: str
    add_special: bool


def decode_json(raw: bytes) -> Any:
    """Parse a request body: UTF-8 JSON, or a 400 saying which of the two it is not."""
    try:
        return openai.decode_json(raw)
    except openai.InvalidBody as exc:
        raise BadRequest(str(exc), code=exc.code) from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, got {_kind(body)}")
    return body


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            int: "integer", float: "number", type(None): "null"}.get(type(value), "value")


def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"'{key}' must be a number, got {_kind(value)}", param=key)
    if not lo <= value <= hi:
        raise BadRequest(f"'{key}' must be between {lo} and {hi}, got {value}", param=key)
    return float(value)


def _integer(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{key}' must be an integer, got {_kind(value)}", param=key)
    return value


def _model(body: dict[str, Any]) -> str | None:
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise BadRequest("'model' must be a non-empty string", param="model")
    return model


def _stop(body: dict[str, Any], limit: int) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if (not isinstance(stops, list) or len(stops) > limit
            or not all(isinstance(s, str) and 0 < len(s) <= _MAX_STOP_CHARS for s in stops)):
        raise BadRequest(f"'stop' must be a non-empty string or an array of up to {limit} "
                         f"non-empty strings of at most {_MAX_STOP_CHARS} characters",
                         param="stop")
    return tuple(stops)


def _reject_unsupported(body: dict[str, Any], suffix_ok: bool = False) -> None:
    if body.get("n", 1) != 1:
        raise BadRequest("'n' must be 1: one choice per request is supported", param="n")
    for key in ("logprobs", "echo", "tools", "functions"):
        if body.get(key):
            raise BadRequest(f"'{key}' is not supported by this backend", param=key)
    if body.get("suffix") is not None and not suffix_ok:
        raise BadRequest("'suffix' is not supported by this backend", param="suffix")


def _params(body: dict[str, Any], defaults: Sampling, max_tokens_cap: int,
            max_stops: int = _MAX_STOPS) -> GenerationParams:
    max_tokens = _integer(body, "max_tokens")
    if max_tokens is None:
        max_tokens = _integer(body, "max_completion_tokens")
    if max_tokens is not None and not 1 <= max_tokens <= max_tokens_cap:
        raise BadRequest(f"'max_tokens' must be between 1 and {max_tokens_cap}, got {max_tokens}",
                         param="max_tokens")
    top_k = _integer(body, "top_k")
    if top_k is not None and not 0 <= top_k <= _MAX_TOP_K:
        raise BadRequest(f"'top_k' must be between 0 and {_MAX_TOP_K}, got {top_k}",
                         param="top_k")
    seed = _integer(body, "seed")
    if seed is not None and not -(2**63) <= seed < 2**64:
        raise BadRequest("'seed' must be a 64-bit integer", param="seed")
    return GenerationParams(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", defaults.temperature, 0.0, 2.0),
        top_p=_number(body, "top_p", defaults.top_p, 0.0, 1.0),
        top_k=defaults.top_k if top_k is None else top_k,
        min_p=_number(body, "min_p", defaults.min_p, 0.0, 1.0),
        repeat_penalty=_number(body, "repeat_penalty", defaults.repeat_penalty, 0.0, 10.0),
        stop=_stop(body, max_stops),
        seed=None if seed is None else seed % 2**32,  # llama.cpp's seed is 32 bits
    )


def _stream(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest(f"'stream' must be a boolean, got {_kind(stream)}", param="stream")
    return stream


def _content(message: dict[str, Any], i: int) -> str:
    content = message.get("content")
    if content is None and message.get("role") == "assistant":
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"
                    and isinstance(part.get("text"), str)):
                raise BadRequest(f"messages[{i}].content: only text parts are supported",
                                 param="messages")
            parts.append(part["text"])
        return "".join(parts)
    raise BadRequest(f"messages[{i}].content must be a string or an array of text parts",
                     param="messages")


def _prediction(body: dict[str, Any]) -> str:
    """OpenAI's `prediction`: {"type": "content", "content": string | [text parts]}."""
    value = body.get("prediction")
    if value is None:
        return ""
    text = openai.prediction_text(value)
    if text is None:
        raise BadRequest("'prediction' must be {\"type\": \"content\", \"content\": a string "
                         "or an array of text parts}", param="prediction")
    return text


def _speculative(body: dict[str, Any]) -> bool | None:
    value = body.get("speculative")
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"'speculative' must be a boolean, got {_kind(value)}",
                         param="speculative")
    return value


def model_of(body: Any) -> str | None:
    """The requested model name, validated, before anything else is looked at."""
    return _model(_object(body))


def parse_chat(body: Any, defaults: Sampling, max_tokens_cap: int) -> CompletionRequest:
    """Validate a chat completion request."""
    body = _object(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is required: a non-empty array of {role, content}",
                         param="messages")
    if len(messages) > _MAX_MESSAGES:
        raise BadRequest(f"'messages' has {len(messages)} entries; at most {_MAX_MESSAGES} "
                         "are accepted", param="messages")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{i}] must be an object", param="messages")
        role = message.get("role")
        if role not in _ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {', '.join(_ROLES)}",
                             param="messages")
        out.append({"role": "system" if role == "developer" else role,
                    "content": _content(message, i)})
    _reject_unsupported(body)
    return CompletionRequest(kind="chat", model=_model(body), stream=_stream(body),
                             params=_params(body, defaults, max_tokens_cap), messages=tuple(out),
                             prediction=_prediction(body), speculative=_speculative(body))


def parse_completion(body: Any, defaults: Sampling, max_tokens_cap: int) -> CompletionRequest:
    """Validate a (legacy) text completion request."""
    body = _object(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' is required: a string", param="prompt")
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise BadRequest(f"'suffix' must be a string, got {_kind(suffix)}", param="suffix")
    if not prompt and suffix is None:
        raise BadRequest("'prompt' is empty", param="prompt")
    _reject_unsupported(body, suffix_ok=True)
    stops = _MAX_STOPS if suffix is None else MAX_FIM_STOPS
    return CompletionRequest(kind="completion", model=_model(body), stream=_stream(body),
                             params=_params(body, defaults, max_tokens_cap, stops),
                             prompt=prompt, suffix=suffix, prediction=_prediction(body),
                             speculative=_speculative(body))


def parse_tokenize(body: Any) -> TokenizeRequest:
    """Validate a tokenize request: {model, text, add_special?}."""
    body = _object(body)
    text = body.get("text")
    if not isinstance(text, str):
        raise BadRequest("'text' is required: a string", param="text")
    add_special = body.get("add_special", True)
    if not isinstance(add_special, bool):
        raise BadRequest("'add_special' must be a boolean", param="add_special")
    return TokenizeRequest(model=_model(body), text=text, add_special=add_special)


# --- responses -------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Token accounting for one generation."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    accepted_prediction_tokens: int = 0  # speculative decoding: drafted tokens accepted
    rejected_prediction_tokens: int = 0  # and rejected (evaluated, never emitted)

    def as_dict(self) -> dict[str, Any]:
        """OpenAI's usage object: cached prompt tokens in prompt_tokens_details, drafted
        tokens accepted and rejected in completion_tokens_details (Predicted Outputs)."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {
                "accepted_prediction_tokens": self.accepted_prediction_tokens,
                "rejected_prediction_tokens": self.rejected_prediction_tokens,
            },
        }


@dataclass(frozen=True)
class Envelope:
    """What every chunk or body of one response shares."""

    kind: Kind
    request_id: str
    model: str
    created: int

    @classmethod
    def new(cls, kind: Kind, request_id: str, model: str) -> Envelope:
        """An envelope stamped now."""
        return cls(kind, request_id, model, int(time.time()))

    @property
    def id(self) -> str:
        """The response id carries the request id, so logs and clients can be matched."""
        return f"{'chatcmpl' if self.kind == 'chat' else 'cmpl'}-{self.request_id}"

    def _base(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def chunk(self, text: str | None, *, finish_reason: str | None = None,
              usage: Usage | None = None, first: bool = False) -> dict[str, Any]:
        """One streamed chunk: a token's text, or (text None) the closing chunk."""
        if self.kind == "chat":
            delta: dict[str, str] = {}
            if first:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            out = self._base("chat.completion.chunk")
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None,
                      "finish_reason": finish_reason}
            out = self._base("text_completion")
        out["choices"] = [choice]
        if usage is not None:
            out["usage"] = usage.as_dict()
        return out

    def body(self, text: str, finish_reason: str, usage: Usage) -> dict[str, Any]:
        """The whole non-streamed response."""
        if self.kind == "chat":
            out = self._base("chat.completion")
            out["choices"] = [{"index": 0, "finish_reason": finish_reason,
                               "message": {"role": "assistant", "content": text}}]
        else:
            out = self._base("text_completion")
            out["choices"] = [{"index": 0, "text": text, "logprobs": None,
                               "finish_reason": finish_reason}]
        out["usage"] = usage.as_dict()
        return out


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event line pair."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False,
                                                            separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


def completion_budget(prompt_tokens: int, requested: int | None, default: int, n_ctx: int) -> int:
    """max_tokens for a prompt of `prompt_tokens`: never truncate a request silently.

    An explicit max_tokens that does not fit is a 400 naming the numbers; the model's default
    is clipped to the room the context has left.
    """
    if prompt_tokens == 0:
        raise BadRequest("the prompt is empty", param="prompt")
    if prompt_tokens >= n_ctx:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens but the model's context is {n_ctx} tokens; "
            f"shorten it by at least {prompt_tokens - n_ctx + 1} tokens")
    room = n_ctx - prompt_tokens
    if requested is None:
        return min(default, room)
    if requested > room:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens and max_tokens is {requested}, together "
            f"{prompt_tokens + requested}, over the model's context of {n_ctx} tokens; "
            f"max_tokens can be at most {room}", param="max_tokens")
    return requested
