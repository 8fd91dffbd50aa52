"""Deduplication (pure): collapse exact and near-exact repeats of a chunk to one.

Exact: the same token stream once comments, whitespace and literals are gone and (optionally)
identifiers are renamed by order of first use, so `fetch_user`/`fetch_order` copies match.
Near-exact: Jaccard similarity of token 3-shingles in which names local to one chunk are
blanked, so an added line or parameter does not hide a copy.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from .chunk import Chunk
from .config import PipelineConfig
from .scan import KEYWORDS

_TOKEN = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|[^\s\w]")
_KINDS = frozenset({"function", "method", "class", "struct", "enum", "impl", "trait",
                    "interface", "macro", "block", "window", "statements"})
_SAME = MappingProxyType({"method": "function"})  # a copied method is alike a copied function
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")


@dataclass(frozen=True)
class Deduped:
    """Chunks left after deduplication, and which kept chunk each dropped one repeated."""

    chunks: tuple[Chunk, ...]  # in original order
    duplicate_of: Mapping[int, int]  # dropped chunk index -> index of the kept look-alike

    @property
    def dropped(self) -> int:
        """How many chunks were collapsed into a look-alike."""
        return len(self.duplicate_of)


def tokens(chunk: Chunk) -> list[str]:
    """The chunk's code tokens: comments and whitespace gone, literals reduced to a mark."""
    return [("0" if t[0].isdigit() else t) for t in _TOKEN.findall(chunk.masked)]


def fingerprint(toks: Sequence[str], canonicalize: bool) -> int:
    """Hash of the token stream; with `canonicalize`, names become their order of first use."""
    if not canonicalize:
        return hash(tuple(toks))
    names = dict.fromkeys([t for t in toks if t[0] in _NAME_START and t not in KEYWORDS])
    order = {name: i for i, name in enumerate(names)}
    return hash(tuple([order.get(t, t) for t in toks]))


def shingles(toks: Sequence[str], shared: Collection[str]) -> frozenset[tuple[str, str, str]]:
    """3-shingles of the stream with names not in `shared` blanked to one mark."""
    marked = [t if t[0] not in _NAME_START or t in shared or t in KEYWORDS else "$"
              for t in toks]
    return frozenset(zip(marked, marked[1:], marked[2:], strict=False))


def dedup(chunks: Sequence[Chunk], cfg: PipelineConfig, *,
          protect: Collection[int] = ()) -> Deduped:
    """Drop repeats; protected chunks (named by the instruction, holding a TODO) stay."""
    eligible = [c for c in chunks if c.kind in _KINDS and c.role == "whole"
                and len(c.text) >= cfg.dedup_min_chars]
    if len(eligible) < 2:
        return Deduped(tuple(chunks), {})
    streams = {c.index: tokens(c) for c in eligible}
    # Names used by two or more chunks are vocabulary (APIs, globals); the rest are local.
    df = Counter(name for c in eligible for name in c.uses | c.defines)
    shared = frozenset(name for name, n in df.items() if n > 1)
    order = sorted(eligible, key=lambda c: (c.index not in protect, c.index))
    reps: dict[int, list[tuple[Chunk, int, frozenset[tuple[str, str, str]] | None]]] = {}
    by_key: dict[tuple[object, ...], int] = {}
    duplicate_of: dict[int, int] = {}
    for c in order:
        kind = _SAME.get(c.kind, c.kind)
        toks = streams[c.index]
        key = (kind, fingerprint(toks, cfg.canonicalize_identifiers))
        if c.index in protect:
            # A named chunk pasted twice is still a repeat; a renamed copy is not.
            verbatim = (kind, fingerprint(toks, False), 0)
            if verbatim in by_key:
                duplicate_of[c.index] = by_key[verbatim]
                continue
            by_key[verbatim] = c.index
        else:
            if key in by_key:
                duplicate_of[c.index] = by_key[key]
                continue
            rep = _near(toks, reps.get(kind, []), streams, shared, cfg)
            if rep is not None:
                duplicate_of[c.index] = rep
                continue
        by_key.setdefault(key, c.index)
        reps.setdefault(kind, []).append((c, len(toks), None))
    kept = tuple(c for c in chunks if c.index not in duplicate_of)
    return Deduped(kept, duplicate_of)


def _near(toks: list[str],
          reps: list[tuple[Chunk, int, frozenset[tuple[str, str, str]] | None]],
          streams: Mapping[int, list[str]], shared: frozenset[str],
          cfg: PipelineConfig) -> int | None:
    """The index of a kept look-alike of `toks` (Jaccard >= cfg.near_duplicate), if any."""
    mine: frozenset[tuple[str, str, str]] | None = None
    for i, (rep, size, rep_shingles) in enumerate(reps):
        if min(size, len(toks)) < 0.7 * max(size, len(toks)):
            continue  # sizes too far apart for the threshold to be reachable
        if mine is None:
            mine = shingles(toks, shared)
        if rep_shingles is None:
            rep_shingles = shingles(streams[rep.index], shared)
            reps[i] = (rep, size, rep_shingles)
        small, large = sorted((len(mine), len(rep_shingles)))
        if not large or small < cfg.near_duplicate * large:
            continue  # even full overlap would not reach the threshold
        common = len(mine & rep_shingles)
        if common / (small + large - common) >= cfg.near_duplicate:
            return rep.index
    return None
