"""llama-server's `timings` object: what a generation cost, in its own replies (`/completion`,
`/infill`) and in its OpenAI-compatible ones (the last chunk or the body) alike (pure)."""

from __future__ import annotations

from cerebrum.generation.events import Timing, Usage


def llama_server(prompt_n: int, prompt_s: float, predicted_n: int, predicted_s: float,
                 cache_n: int) -> dict[str, float | int]:
    """llama-server's `timings`. As llama-server's, the generation rates count the steps
    between the first and the last token (`predicted_n` - 1), the time they span."""
    prompt_ms, predicted_ms = prompt_s * 1000, predicted_s * 1000
    steps = max(predicted_n - 1, 0)
    return {
        "cache_n": cache_n,
        "prompt_n": prompt_n, "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / prompt_n if prompt_n else 0.0,
        "prompt_per_second": prompt_n / prompt_s if prompt_s > 0 else 0.0,
        "predicted_n": predicted_n, "predicted_ms": predicted_ms,
        "predicted_per_token_ms": predicted_ms / steps if steps else 0.0,
        "predicted_per_second": steps / predicted_s if predicted_s > 0 else 0.0,
    }


def of(usage: Usage, timing: Timing, predict_seconds: float | None = None
       ) -> dict[str, float | int]:
    """The `timings` of a generation from its usage and timing (`predict_seconds`: the time
    all its choices took, when there are several)."""
    return llama_server(usage.prompt_tokens - usage.cached_tokens, timing.prompt_seconds,
                        usage.completion_tokens,
                        timing.predict_seconds if predict_seconds is None else predict_seconds,
                        usage.cached_tokens)
