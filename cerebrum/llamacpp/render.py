"""The internal events as llama.cpp's own replies (`/infill`, `/completion`), pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cerebrum import timings
from cerebrum.generation.events import Finish, TextDelta


def select_fields(body: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """llama-server's `response_fields`: each "a/b" path that exists, under its own flat name
    (`"timings/prompt_n": 42`); a path that is not there is left out, so `[""]` gives {}."""
    out: dict[str, Any] = {}
    for path in paths:
        value: Any = body
        for key in path.split("/"):
            if not isinstance(value, dict) or key not in value:
                break
            value = value[key]
        else:
            out[path] = value
    return out


@dataclass
class Reply:
    """The internal events of one generation as llama-server's reply: `{"content":…,
    "stop":false}` pieces, then the last object (`stop: true`) with what it cost, or, not
    streamed, that object alone with the whole content (`response_fields` honoured)."""

    model: str
    n_prompt: int
    generation_settings: dict[str, Any]  # the parameters the reply was made with
    truncated: bool = False
    truncation: dict[str, Any] | None = None  # fill in the middle: what was cut to fit
    response_fields: tuple[str, ...] | None = None
    predicted: int = 0

    def piece(self, delta: TextDelta) -> dict[str, Any]:
        """One streamed piece."""
        self.predicted += 1
        return {"index": 0, "content": delta.text, "stop": False, "id_slot": 0,
                "tokens_predicted": self.predicted, "tokens_evaluated": self.n_prompt}

    def final(self, content: str, finish: Finish) -> dict[str, Any]:
        """The last object (streamed: `content` ""; else the whole answer)."""
        usage, timing = finish.usage, finish.timing
        out = {
            "index": 0, "content": content, "id_slot": 0, "stop": True, "model": self.model,
            "tokens_predicted": usage.completion_tokens, "tokens_evaluated": self.n_prompt,
            "generation_settings": self.generation_settings, "truncated": self.truncated,
            "stop_type": timing.stop_type, "stopping_word": timing.stopping_word,
            "tokens_cached": timing.tokens_cached,
            "timings": timings.of(usage, timing),
        }
        if self.truncation is not None:
            out["truncation"] = self.truncation
        return out

    def body(self, content: str, finish: Finish) -> dict[str, Any]:
        """The non-streamed reply, `response_fields` applied."""
        out = self.final(content, finish)
        return select_fields(out, self.response_fields) if self.response_fields else out
