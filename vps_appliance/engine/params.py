"""What one generation runs with: the sampling and length a wire format's request comes to
(`wire.protocol.params_of`), the engine's input."""

from __future__ import annotations

from dataclasses import dataclass


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
