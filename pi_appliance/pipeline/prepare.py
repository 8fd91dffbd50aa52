"""The pipeline end to end (pure, synchronous): segment, extract, chunk, dedup, rank, fit,
assemble; or the raw prompt, with the reason, when reducing would not pay.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .assemble import Assembled, assemble, predicted
from .budget import TokenCounter, estimate_tokens, fit
from .chunk import Chunk, chunk
from .config import PipelineConfig
from .dedup import dedup
from .errors import OverBudget
from .extract import Instruction, extract
from .language import canonical, detect_language
from .rank import protected, rank, resolve_named, select
from .segment import Segment, segment

Mode = Literal["pipeline", "raw"]
_STATS = ("original_chars", "original_tokens", "sent_chars", "sent_tokens", "reduction",
          "chunks_total", "chunks_kept", "chunks_dropped", "chunks_deduplicated", "pipeline_ms")


@dataclass(frozen=True)
class OlderTurns:
    """What was done to the exchanges before the current user message: how many there were,
    how many were sent whole, with their code reduced to outlines, or dropped; and their
    estimated tokens (chat template included) before and after."""

    turns: int = 0
    kept: int = 0
    reduced: int = 0
    dropped: int = 0
    original_tokens: int = 0
    sent_tokens: int = 0


@dataclass(frozen=True)
class Prepared:
    """What to send upstream, why, and the figures for logs and metrics."""

    mode: Mode
    reason: str
    language: str | None
    language_reason: str
    instruction: str | None
    named: tuple[str, ...]
    messages: list[dict[str, str]]
    prompt: str
    original_chars: int
    original_tokens: int
    sent_chars: int
    sent_tokens: int
    reduction: float  # 1 - sent_chars / original_chars, in 0..1
    chunks_total: int
    chunks_kept: int
    chunks_dropped: int  # left out by ranking or the budget
    chunks_deduplicated: int  # collapsed into a look-alike
    pipeline_ms: float
    kept: tuple[str, ...] = ()  # names of the chunks sent (empty when raw: all was sent)
    edit: bool = False  # the instruction edits the given code (extract.is_edit)
    # For an edit task, the code its answer will likely repeat (a backend drafts from it);
    # None for other tasks, without code or instruction, and in raw mode requested.
    prediction: str | None = None
    # A chat's other messages (`pipeline.conversation`): the ones before this message as
    # sent, None when sent as the client sent them; the estimated tokens of all the others
    # (chat template included); what was done to the older turns (None: not a chat).
    history: tuple[dict[str, Any], ...] | None = None
    context_tokens: int = 0
    older_turns: OlderTurns | None = None

    def stats_dict(self) -> dict[str, Any]:
        """The stats as a JSON-friendly dict: sizes, counts, mode and reasons; no prompt text
        and no names from the code, so it is safe to log."""
        out: dict[str, Any] = {k: getattr(self, k) for k in _STATS}
        out.update(mode=self.mode, reason=self.reason, language=self.language,
                   language_reason=self.language_reason, edit=self.edit)
        out["reduction"] = round(self.reduction, 4)
        out["pipeline_ms"] = round(self.pipeline_ms, 3)
        if self.older_turns is not None:
            out["older_turns"] = dataclasses.asdict(self.older_turns)
        return out


def prepare(text: str, cfg: PipelineConfig, *, language: str | None = None,
            count_tokens: TokenCounter = estimate_tokens, budget_tokens: int | None = None,
            mode: Literal["auto", "raw"] = "auto",
            clock: Callable[[], float] = time.perf_counter) -> Prepared:
    """Reduce a user message to the instruction and the code it needs, within the budget."""
    started = clock()
    lang, lang_reason = detect_language(text, language)
    base = _Base(text, count_tokens(text), lang, lang_reason, budget_tokens, count_tokens,
                 started, clock)
    if mode == "raw":
        return base.raw("raw mode requested", None, "the raw prompt")
    segments = segment(text)
    instruction = extract(segments)
    if instruction is None:
        return base.raw("no instruction found (no directive in prose, no TODO/FIXME comment)",
                        None, "the raw prompt (no instruction found to reduce around)")
    # Sent raw, an edit's answer repeats the message's code: all of it is the prediction.
    raw_prediction = _code_of(segments) if instruction.edit else None
    code_chars = sum(len(s.text) for s in segments if s.kind == "code")
    if code_chars <= cfg.chunk_threshold:
        return base.raw(f"code is {code_chars} chars, not over the chunking threshold of "
                        f"{cfg.chunk_threshold}", instruction, "the raw prompt (code too "
                        "small to chunk)", prediction=raw_prediction)
    chunks: list[Chunk] = []
    for i, seg in enumerate(segments):
        if seg.kind == "code":
            seg_lang = canonical(seg.tag) if seg.tag else None
            chunks += chunk(seg.text, seg_lang or lang, cfg, block=i, first_index=len(chunks))
    named = resolve_named(instruction, chunks)
    targets = protected(chunks, instruction, named)
    deduped = dedup(chunks, cfg, protect=targets)
    picks = select(rank(deduped.chunks, instruction, named, cfg), named, cfg)
    if not picks:
        return base.raw("no code worth keeping found", instruction, "the raw prompt",
                        named=named, prediction=raw_prediction)

    def render(kept: tuple[int, ...], context: bool) -> str:
        done = assemble(segments, instruction, chunks, set(kept), deduped.duplicate_of,
                        context=context)
        # Budget against the longer form, so either one fits.
        return done.prompt

    fitted = fit(picks, render, count_tokens, budget_tokens)
    kept = {i for pick in picks[: fitted.picks] for i in pick}
    done = assemble(segments, instruction, chunks, kept, deduped.duplicate_of,
                    context=fitted.context)
    reduction = max(0.0, 1 - len(done.content) / len(text))
    reason = f"kept {len(kept)} of {len(chunks)} chunks"
    if fitted.picks < len(picks) or not fitted.context:
        reason += (f"; dropped {len(picks) - fitted.picks} lower-ranked picks"
                   + ("" if fitted.context else " and the prose context")
                   + f" to fit {budget_tokens} tokens")
    if reduction < cfg.min_reduction:
        why = f"reduction {reduction:.0%} under the minimum {cfg.min_reduction:.0%}"
        if budget_tokens is None or base.tokens <= budget_tokens:
            return base.raw(why, instruction, "the raw prompt", named=named,
                            prediction=raw_prediction)
        reason += f"; {why}, but the raw prompt is over the budget"
    # The answer repeats the kept code the task names (or, naming none, all the kept code).
    prediction = predicted(segments, chunks, (kept & targets) or kept) \
        if instruction.edit else None
    return base.done("pipeline", reason, instruction, named, done, reduction,
                     chunks_total=len(chunks), chunks_kept=len(kept),
                     chunks_dropped=len(chunks) - len(kept) - deduped.dropped,
                     chunks_deduplicated=deduped.dropped,
                     kept=tuple(c.name for c in chunks if c.index in kept and c.name
                                and c.role in ("whole", "part")),
                     prediction=prediction or None)


def _code_of(segments: list[Segment]) -> str | None:
    """The message's code blocks, a blank line apart; None without any."""
    return "\n\n".join(s.text for s in segments if s.kind == "code") or None


@dataclass(frozen=True)
class _Base:
    """What every outcome shares: the original message, its count, language and clock."""

    text: str
    tokens: int
    language: str | None
    language_reason: str
    budget: int | None
    count_tokens: TokenCounter
    started: float
    clock: Callable[[], float]

    def raw(self, reason: str, instruction: Instruction | None, what: str, *,
            named: tuple[str, ...] = (), prediction: str | None = None) -> Prepared:
        if self.budget is not None and self.tokens > self.budget:
            raise OverBudget(self.tokens, self.budget, what=what)
        raw = Assembled(self.text, self.text)
        return self.done("raw", reason, instruction, named, raw, 0.0, prediction=prediction)

    def done(self, mode: Mode, reason: str, instruction: Instruction | None,
             named: tuple[str, ...], out: Assembled, reduction: float,
             **counts: Any) -> Prepared:
        sent = self.tokens if mode == "raw" else self.count_tokens(out.content)
        stats = {"chunks_total": 0, "chunks_kept": 0, "chunks_dropped": 0,
                 "chunks_deduplicated": 0, "kept": (), "prediction": None} | counts
        return Prepared(mode, reason, self.language, self.language_reason,
                        instruction.text if instruction else None, named, out.messages,
                        out.prompt, len(self.text), self.tokens, len(out.content), sent,
                        reduction, pipeline_ms=(self.clock() - self.started) * 1000,
                        edit=bool(instruction and instruction.edit), **stats)

