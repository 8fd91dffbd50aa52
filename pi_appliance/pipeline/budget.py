"""Token budget (pure): a calibrated token estimate, and fitting the prompt into a budget by
dropping the lowest-ranked picks; the instruction is never cut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import OverBudget

TokenCounter = Callable[[str], int]

# Calibration (bench/pipeline.py --calibrate): the corpus under tests/data/corpus (code and
# prose, 6 languages), tokenized by Qwen2.5-Coder, SmolLM2, Llama 3, DeepSeek-Coder and
# StarCoder vocabularies. Code tokenizes at 3.0-4.1 characters per token and English prose
# at 4.3-4.8; runs of spaces (indentation) are cheap, punctuation is dear. Counting the
# non-blank characters at 3.2 each plus one token per line keeps the estimate at or above
# the exact count for nearly every case (median overestimate ~8 %), so a prompt that fits
# the estimate fits the model.
CHARS_PER_TOKEN = 3.2
TOKENS_PER_LINE = 0.35


def estimate_tokens(text: str) -> int:
    """A cheap, slightly pessimistic token count for code and prose (see the calibration)."""
    if not text:
        return 0
    blank = text.count(" ") + text.count("\t")
    lines = text.count("\n") + 1
    return int((len(text) - blank) / CHARS_PER_TOKEN + TOKENS_PER_LINE * lines + blank / 16) + 1


@dataclass(frozen=True)
class Fitted:
    """The largest prefix of the picks whose rendering fits, and that rendering."""

    picks: int  # how many picks were kept
    context: bool  # whether the prose around the instruction was kept
    text: str
    tokens: int


def fit(picks: Sequence[tuple[int, ...]], render: Callable[[tuple[int, ...], bool], str],
        count_tokens: TokenCounter, budget: int | None) -> Fitted:
    """Keep the most picks (best first) that fit `budget`, with the prose context if it fits
    at all; raise OverBudget when the instruction alone does not."""

    def attempt(n: int, context: bool) -> Fitted:
        text = render(tuple(i for pick in picks[:n] for i in pick), context)
        return Fitted(n, context, text, count_tokens(text))

    full = attempt(len(picks), True)
    if budget is None or full.tokens <= budget:
        return full
    for context in (True, False):
        best = attempt(0, context)
        if best.tokens > budget:
            continue
        lo, hi = 1, len(picks)  # binary search: the rendering grows with each pick kept
        while lo <= hi:
            mid = (lo + hi) // 2
            tried = attempt(mid, context)
            if tried.tokens <= budget:
                best, lo = tried, mid + 1
            else:
                hi = mid - 1
        return best
    raise OverBudget(attempt(0, False).tokens, budget)
