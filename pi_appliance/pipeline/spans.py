"""Spans (pure): items a splitter finds before they become chunks, and the shared splitters:
windows of whole lines, and cutting an oversized item at statement starts.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate

from .config import PipelineConfig


@dataclass(frozen=True)
class Span:
    """An item found by a splitter (0-based inclusive lines of the code block)."""

    kind: str
    name: str | None
    start: int
    end: int
    parent: str | None = None
    role: str = "whole"  # whole | header | footer | part
    group: int | None = None  # a container's id, shared by its header, members and footer
    defines: tuple[str, ...] = ()
    part: int = 0


def window_spans(raw: Sequence[str], cfg: PipelineConfig) -> list[Span]:
    """Windows of about `cfg.window_chars` of whole lines, overlapping by `window_overlap`."""
    spans: list[Span] = []
    start = 0
    n = len(raw)
    while start < n:
        size = 0
        end = start
        while end < n and (end == start or size + len(raw[end]) + 1 <= cfg.window_chars):
            size += len(raw[end]) + 1
            end += 1
        spans.append(Span("window", None, start, end - 1))
        if end >= n:
            break
        back = end
        overlap = 0
        while back - 1 > start and overlap < cfg.window_overlap:
            back -= 1
            overlap += len(raw[back]) + 1
        start = back
    return spans


def split_inside(span: Span, boundaries: Sequence[tuple[int, int]], raw: Sequence[str],
                 cfg: PipelineConfig) -> list[Span]:
    """Split an oversized span at statement starts (line, depth), preferring shallow ones."""
    acc = [0, *accumulate(len(raw[i]) + 1 for i in range(span.start, span.end + 1))]

    def size(a: int, b: int) -> int:
        return acc[b - span.start + 1] - acc[a - span.start]

    limit = cfg.max_chunk_chars
    cuts = sorted((line, depth) for line, depth in boundaries if span.start < line <= span.end)
    lines = [ln for ln, _ in cuts]
    pieces: list[tuple[int, int]] = []
    start = span.start
    while size(start, span.end) > limit:
        # The cuts after `start` that keep the piece within the limit, and among them those
        # that fill at least half a piece: ranges of the sorted cuts (the size grows with the
        # line), so each piece reads only its own cuts.
        first = bisect_right(lines, start)
        stop = _first_over(lines, first, lambda ln, a=start: size(a, ln - 1) > limit)
        fitting = cuts[first:stop]
        if fitting:
            late = cuts[_first_over(lines, first, lambda ln, a=start: size(a, ln - 1) >= limit // 2)
                        : stop]
            # Among cuts that fill at least half a piece, the shallowest, then the latest.
            best = min(late or fitting, key=lambda c: (c[1], -c[0]))[0]
        else:
            if first >= len(cuts):
                break
            best = lines[first]  # one statement over the limit: a big piece beats a cut line
        pieces.append((start, best - 1))
        start = best
    pieces.append((start, span.end))
    if len(pieces) == 1:
        return [span]
    return [replace(span, start=a, end=b, role="part", part=i + 1)
            for i, (a, b) in enumerate(pieces)]


def _first_over(lines: Sequence[int], lo: int, over: Callable[[int], bool]) -> int:
    """The first index from `lo` whose line is `over` (a condition that, once true, stays)."""
    hi = len(lines)
    while lo < hi:
        mid = (lo + hi) // 2
        if over(lines[mid]):
            hi = mid
        else:
            lo = mid + 1
    return lo


def trim(span: Span, raw: Sequence[str]) -> Span | None:
    """The span without leading and trailing blank lines, or None if it is all blank."""
    start, end = span.start, span.end
    while start <= end and not raw[start].strip():
        start += 1
    while end >= start and not raw[end].strip():
        end -= 1
    if start > end:
        return None
    return span if (start, end) == (span.start, span.end) else replace(span, start=start, end=end)
