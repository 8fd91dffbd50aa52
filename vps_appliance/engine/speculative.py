"""Speculative decoding without a draft model: the drafts come from the request itself.

Answers to edit tasks repeat most of the code they were given, so the next tokens are often
already in the prompt, in the client's `prediction` (OpenAI's Predicted Outputs) or earlier in
the answer. `Drafter` proposes them (pure: token lists in, token lists out); `decode` in the
engine verifies a draft in one batch and keeps the longest run the model agrees with.

- n-gram lookup over the prompt and what has been generated, taking the *most recent*
  occurrence of the longest n-gram that ends the text (llama-cpp-python's
  LlamaPromptLookupDecoding takes the first, which is usually the stale one);
- the prediction, followed with a cursor: a match at or after where the last accepted draft
  ended wins, so a prediction that repeats a line is followed in order;
- an n-gram's most recent occurrence that has a whole draft after it (one near the end of
  the answer has only a few tokens after it: an older one is followed further);
- adaptive length: a draft accepted whole doubles the next batch (up to `draft_max`), one
  accepted at least half halves it at most (to no less than what was accepted plus one: a
  verified position costs far less than a step), one accepted less than half is a miss: it
  sets it to what was accepted plus one, halved at most; consecutive
  misses (two) switch drafting off for a cool-down that doubles each time (up to 256 tokens),
  so a task that copies nothing pays for a few drafts and then for none;
- aligned batches: the batch verified (the last token and the draft) is a multiple of
  `align` tokens where the source has them. llama.cpp's CPU matrix products are cheaper for
  a multiple of 4 rows, mostly in the output layer (Q8_0, 151,936 rows, logits at every
  verified position): on 2 cores (AMD EPYC, AVX2, position 1,500, the default plain weight
  layout) a batch of 7 costs 106 ms and one of 8 87 ms, 15 / 16 / 17 cost 157 / 121 / 151,
  31 / 32 / 33 247 / 242 / 283, against 21 ms for one token; per token the cost falls from
  10.9 ms at 8 to 6.8 ms at 48. So drafts are 7, 11, 15, … 47 tokens (7 → 15 → 31 → 47
  while whole drafts are accepted), never 16, unless the source runs out first.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from ..settings import ModelSpec

_MISSES_BEFORE_OFF = 2
_MAX_COOLDOWN = 256
_SCAN = 64  # occurrences looked at for one followed by a whole draft


@dataclass(frozen=True)
class DraftConfig:
    """Per-generation drafting bounds (from the model's config and the request)."""

    enabled: bool = True
    exact: bool = False  # keep drafts within the batch that gives one-token steps' logits
    draft_min: int = ModelSpec.draft_min  # one default, the model config's
    draft_max: int = ModelSpec.draft_max
    align: int = 4  # verified batches (draft + 1) are a multiple of this when they can be
    # The n-grams looked up, longest first. Short keys match often and guess badly: on an
    # "add type hints" edit 2..4 had 75 % of drafted tokens accepted, 4..12 99.6 %; a rejected
    # draft costs a batch (2.8 one-token steps for 7 tokens on 2 cores).
    ngram_min: int = 4
    ngram_max: int = 12


@dataclass
class DraftStats:
    """Drafted and accepted tokens of one generation."""

    drafted: int = 0
    accepted: int = 0

    @property
    def rejected(self) -> int:
        """Drafted tokens the model did not agree with."""
        return self.drafted - self.accepted


class _Index:
    """For each n-gram (n in lo..hi) of a token sequence: where its occurrences end, in order.
    Built incrementally as tokens are appended."""

    def __init__(self, lo: int, hi: int) -> None:
        self._sizes = range(lo, hi + 1)
        self.tokens: list[int] = []
        self._ends: dict[tuple[int, ...], list[int]] = {}

    def extend(self, tokens: Sequence[int]) -> None:
        """Append tokens, indexing every n-gram that ends before the last token.

        An n-gram is indexed once the token after it is known, so the sequence's own tail
        never matches itself.
        """
        seq, ends = self.tokens, self._ends
        for token in tokens:
            end = len(seq)  # the n-grams ending here are followed by `token`
            for n in self._sizes:
                if end >= n:
                    ends.setdefault(tuple(seq[end - n:end]), []).append(end)
            seq.append(token)

    def occurrences(self, gram: tuple[int, ...]) -> list[int]:
        """Positions just after each occurrence of `gram`, oldest first."""
        return self._ends.get(gram, [])


class Drafter:
    """Proposes the next tokens of a generation from its own history and a prediction."""

    def __init__(self, config: DraftConfig, prompt: Sequence[int],
                 prediction: Sequence[int] = ()):
        self.config = config
        self.stats = DraftStats()
        self._history = _Index(config.ngram_min, config.ngram_max)
        self._history.extend(prompt)
        self._prediction = _Index(config.ngram_min, config.ngram_max)
        self._prediction.extend(prediction)
        self._cursor = 0  # where in the prediction the answer is believed to be
        self._size = max(config.draft_min, min(config.draft_max, 7))
        self._misses = 0
        self._cooldown = 0
        self._last_source: str | None = None
        self._last_end = 0

    def append(self, tokens: Sequence[int]) -> None:
        """Tokens the generation produced (accepted drafts and sampled ones)."""
        self._history.extend(tokens)

    def draft(self, limit: int) -> list[int]:
        """Up to `limit` tokens that may come next ([] when drafting is off or nothing
        matches). The history must end with the last sampled token."""
        if not self.config.enabled or limit < self.config.draft_min:
            return []
        if self._cooldown > 0:
            self._cooldown -= 1
            return []
        size = min(_aligned_up(self._size, self.config.align), limit)
        tail = self._history.tokens
        for n in range(self.config.ngram_max, self.config.ngram_min - 1, -1):
            if len(tail) < n:
                continue
            gram = tuple(tail[-n:])
            for source, start in (("prediction", self._in_prediction(gram)),
                                  ("history", self._in_history(gram, size))):
                if start is None:
                    continue
                found = (self._prediction if source == "prediction" else self._history
                         ).tokens[start:start + size]
                aligned = _aligned_down(len(found), self.config.align)
                if aligned >= self.config.draft_min:
                    found = found[:aligned]
                if len(found) >= self.config.draft_min:
                    self._last_source, self._last_end = source, start
                    return found
        return []

    def _in_prediction(self, gram: tuple[int, ...]) -> int | None:
        """Where the prediction goes on after `gram`: at or after the cursor if it can."""
        ends = self._prediction.occurrences(gram)
        if not ends:
            return None
        i = bisect.bisect_left(ends, self._cursor)  # ends are ascending
        return ends[i] if i < len(ends) else ends[-1]

    def _in_history(self, gram: tuple[int, ...], size: int) -> int | None:
        """Where the most recent occurrence of `gram` in the prompt and answer that is followed
        by `size` tokens went on (of the last `_SCAN` occurrences; else the most recent)."""
        ends = self._history.occurrences(gram)
        if not ends:
            return None
        whole = len(self._history.tokens) - size
        return next((end for end in reversed(ends[-_SCAN:]) if end <= whole), ends[-1])

    def result(self, drafted: int, accepted: int) -> None:
        """What became of the last draft: adapt the next draft's length."""
        self.stats.drafted += drafted
        self.stats.accepted += accepted
        if self._last_source == "prediction":
            self._cursor = self._last_end + accepted
        cfg = self.config
        if accepted == drafted:
            self._size = min(cfg.draft_max, 2 * (drafted + 1) - 1)  # the batch doubles
            self._misses = 0
        elif 2 * accepted >= drafted:  # mostly right: the next may well run on
            self._size = max(cfg.draft_min, min(cfg.draft_max, max(accepted + 1, self._size // 2)))
            self._misses = 0
        else:  # less than half: a miss (the batch cost more than the tokens it saved)
            self._size = max(cfg.draft_min, min(self._size // 2, accepted + 1))
            self._misses += 1
            if self._misses >= _MISSES_BEFORE_OFF:
                self._cooldown = min(_MAX_COOLDOWN, 8 << (self._misses - _MISSES_BEFORE_OFF))


def _aligned_up(size: int, align: int) -> int:
    """The smallest draft of at least `size` tokens whose batch (draft + 1) is aligned."""
    return -(-(size + 1) // align) * align - 1


def _aligned_down(size: int, align: int) -> int:
    """The largest draft of at most `size` tokens whose batch is aligned (may be < 0)."""
    return (size + 1) // align * align - 1
