"""llama.cpp's replies (`/infill`, `/completion`: `{"content":…,"stop":false}` pieces, then a
last object with `stop: true`) read back as internal events (pure), for a client that asked
in another format."""

from __future__ import annotations

from typing import Any

from cerebrum.generation.events import Event, Finish, TextDelta, Timing, Usage

_STOP_TYPES = ("eos", "word", "limit", "none")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _word(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _seconds(timings: dict[str, Any], key: str) -> float:
    value = timings.get(key)
    return value / 1000 if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def is_last(chunk: dict[str, Any]) -> bool:
    """Whether this is the reply's last object."""
    return chunk.get("stop") is True


def finish(chunk: dict[str, Any]) -> Finish:
    """The last object's finish: why (`stop_type` "limit": the length), what it cost."""
    timings = chunk.get("timings") if isinstance(chunk.get("timings"), dict) else {}
    stop_type = chunk.get("stop_type") if chunk.get("stop_type") in _STOP_TYPES else "none"
    usage = Usage(prompt_tokens=_int(chunk.get("tokens_evaluated")),
                  completion_tokens=_int(chunk.get("tokens_predicted")),
                  cached_tokens=_int(timings.get("cache_n")))
    rate = timings.get("predicted_per_second")
    timing = Timing(prompt_seconds=_seconds(timings, "prompt_ms"),
                    predict_seconds=_seconds(timings, "predicted_ms"),
                    tokens_cached=_int(chunk.get("tokens_cached")),
                    tokens_per_second=rate if isinstance(rate, int | float) else None,
                    stop_type=stop_type, stopping_word=_word(chunk.get("stopping_word")))
    return Finish("length" if stop_type == "limit" else "stop", usage, 0, timing)


def events(chunk: dict[str, Any]) -> list[Event]:
    """One reply object's events: its text, and, for the last, the finish."""
    text = chunk.get("content")
    out: list[Event] = [TextDelta(text)] if isinstance(text, str) and text else []
    if is_last(chunk):
        out.append(finish(chunk))
    return out
