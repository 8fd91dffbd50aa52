"""Choosing a fill-in-the-middle request's repository context (pure; `plan_infill` runs in a
pipeline worker process under `pipeline.timeout_ms`).

The candidates are the editor's `input_extra` chunks (llama.vim and llama.vscode send their
ring buffer oldest first, so a later chunk is a more recent one) and the files the client
sends as `cerebrum.files`, chunked. Exact repeats, chunks already inside another one and
chunks already around the cursor are dropped; the rest are ranked by BM25 similarity to the
text around the cursor plus a recency bonus, and the best are kept while they fit the
route's budget (its context minus the prediction, the prefix, the suffix and the FIM tokens).

The kept chunks are then **ordered stably**: the backend lays them out before the prefix, so
its KV cache is reused only up to the first chunk that changed. A chunk that stays in the
set keeps its place relative to the others (the previous order, which the caller remembers
per client), and new chunks go after them; ranking decides what is kept, never where.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..pipeline.budget import TOKEN_ESTIMATES, TokenCounter
from ..pipeline.chunk import chunk
from ..pipeline.config import PipelineConfig
from ..pipeline.language import canonical, detect_language
from ..pipeline.rank import term_counts
from ..settings import Settings
from ..upstream import routing
from ..wire.infill import Extra, InfillRequest

LINES_BEFORE = 12  # lines of the prefix (and the typed `prompt`) that make the query …
LINES_AFTER = 6  # … and of the suffix
RECENCY = 0.3  # weight of recency against (normalised) similarity
FILES_RECENCY = 0.5  # a file the client chose to send ranks as a mid-aged editor chunk
FIM_TOKENS = 24  # FIM markers, the repo name and the current file's separator
CHUNK_TOKENS = 4  # a chunk's file separator and newlines, besides its file name
SYNTAX_CHARS = 4000  # the end of the prefix that language detection reads
BM25_K1, BM25_B = 1.2, 0.75
ORDERS_KEPT = 256  # clients whose last context order is remembered
MAX_SENT = 1024  # chunks per request the backend's /infill takes (its input_extra limit)


@dataclass(frozen=True)
class Selection:
    """The chunks sent, in order, and what happened to the others (for the stats)."""

    mode: Literal["selected", "raw"]
    reason: str
    extra: tuple[Extra, ...]
    order: tuple[str, ...]  # the kept chunks' keys, in the order sent
    offered: int  # candidates: editor chunks plus chunks of the client's files
    duplicates: int  # repeats, chunks inside another one or already around the cursor
    over_budget: int  # relevant chunks left out for lack of room
    context_tokens: int  # estimate of what the kept chunks cost
    budget: int  # tokens the route left for them
    pipeline_ms: float = 0.0


class OrderMemory:
    """The order of the context chunks last sent for each client (a bounded LRU), so the
    next request from that client keeps it and the backend's KV cache stays warm."""

    def __init__(self, size: int = ORDERS_KEPT):
        self._size = size
        self._orders: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def get(self, client: str) -> tuple[str, ...]:
        """The client's last order (empty if unknown)."""
        order = self._orders.get(client, ())
        if order:
            self._orders.move_to_end(client)
        return order

    def put(self, client: str, order: tuple[str, ...]) -> None:
        """Remember the client's latest order, forgetting the least recent client."""
        self._orders[client] = order
        self._orders.move_to_end(client)
        while len(self._orders) > self._size:
            self._orders.popitem(last=False)


def key_of(item: Extra) -> str:
    """A chunk's identity across requests: its file name and text."""
    digest = hashlib.blake2b(f"{item.filename}\0{item.text}".encode(errors="replace"),
                             digest_size=8)
    return digest.hexdigest()


def _normal(text: str) -> str:
    return " ".join(text.split())


def candidates(req: InfillRequest, cfg: PipelineConfig) -> list[tuple[Extra, float]]:
    """Each candidate chunk with its recency (0..1): the editor's, then the files' chunks."""
    n = len(req.extra)
    out = [(e, (i + 1) / n) for i, e in enumerate(req.extra)]
    for f in req.files:
        language = canonical(f.filename.rpartition(".")[2]) if "." in f.filename else None
        for c in chunk(f.text, language, cfg):
            if c.text.strip():
                out.append((Extra(f.filename, c.text), FILES_RECENCY))
    return out


def deduplicate(items: Sequence[tuple[Extra, float]], around: str
                ) -> tuple[list[tuple[Extra, float]], int]:
    """Drop blank chunks, exact repeats (whitespace aside; the most recent copy stays),
    chunks inside a longer kept one, and chunks already in the text around the cursor.
    Kept chunks stay in input order; also returns how many were dropped."""
    local = _normal(around)
    seen: dict[str, int] = {}
    for i, (item, _) in enumerate(items):
        text = _normal(item.text)
        if text and text not in local:
            seen[text] = i  # a later copy replaces an earlier one
    texts = sorted(seen, key=len, reverse=True)
    kept_texts: list[str] = []
    for text in texts:
        if not any(text in longer for longer in kept_texts):
            kept_texts.append(text)
    keep = sorted(seen[t] for t in kept_texts)
    return [items[i] for i in keep], len(items) - len(keep)


def query_of(req: InfillRequest) -> str:
    """The text around the cursor: the prefix's last lines, the typed text, the suffix's
    first lines."""
    before = (req.prefix + req.prompt).splitlines()[-LINES_BEFORE:]
    after = req.suffix.splitlines()[:LINES_AFTER]
    return "\n".join([*before, *after])


def scores(items: Sequence[tuple[Extra, float]], query: str) -> list[float]:
    """BM25 similarity of each chunk to the query, normalised to 0..1, plus recency."""
    split: dict[str, list[str]] = {}
    q = term_counts(query, split)
    docs = [term_counts(item.text, split) for item, _ in items]
    if not docs:
        return []
    avg = sum(sum(d.values()) for d in docs) / len(docs) or 1.0
    df = {t: sum(1 for d in docs if t in d) for t in q}
    n = len(docs)
    raw = []
    for d in docs:
        size = sum(d.values())
        s = 0.0
        for t in q:
            tf = d.get(t, 0)
            if tf:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                s += idf * tf * (BM25_K1 + 1) / (tf + BM25_K1 * (1 - BM25_B + BM25_B * size
                                                                  / avg))
        raw.append(s)
    top = max(raw) or 1.0
    return [r / top + RECENCY * recency for r, (_, recency) in zip(raw, items, strict=True)]


def stable_order(kept: Sequence[Extra], previous: Sequence[str]) -> list[Extra]:
    """`kept` with the chunks of the previous order first, in that order, then the new ones
    in their input order."""
    by_key = {key_of(e): e for e in kept}
    old = [by_key[k] for k in dict.fromkeys(previous) if k in by_key]
    placed = {key_of(e) for e in old}
    return old + [e for e in kept if key_of(e) not in placed]


def fim_budget(req: InfillRequest, n_ctx: int, n_predict: int, count: TokenCounter) -> int:
    """Tokens left for the chunks: the context less the prediction, the FIM tokens and the
    text around the cursor as the backend keeps it. The backend cuts the prefix to its last
    three quarters of the room and the suffix to its first quarter at most (less, by the
    model's suffix window), so a long file does not crowd out the chunks it would have
    taken; never below 0."""
    room = n_ctx - n_predict - FIM_TOKENS
    before = min(count(req.prefix) + count(req.prompt), room * 3 // 4)
    after = min(count(req.suffix), room // 4)
    return max(0, room - before - after)


def select(req: InfillRequest, cfg: PipelineConfig, budget: int, count: TokenCounter,
           previous: Sequence[str]) -> Selection:
    """The context to send (see the module docstring)."""
    items = candidates(req, cfg)
    if req.context == "raw":
        extra = tuple(e for e, _ in items)[-MAX_SENT:]  # the last ones, if ever too many
        return Selection("raw", "cerebrum.context is raw: the chunks as sent", extra,
                         tuple(key_of(e) for e in extra), len(items), 0,
                         len(items) - len(extra),
                         sum(count(e.text) + CHUNK_TOKENS for e in extra), budget)
    unique, dropped = deduplicate(items, req.prefix + req.prompt + req.suffix)
    weights = scores(unique, query_of(req))
    ranked = sorted(range(len(unique)), key=lambda i: (-weights[i], i))
    kept, used, over = [], 0, 0
    for i in ranked:
        item = unique[i][0]
        cost = count(item.text) + count(item.filename) + CHUNK_TOKENS
        if used + cost <= budget and len(kept) < MAX_SENT:
            kept.append(i)
            used += cost
        else:
            over += 1
    ordered = stable_order([unique[i][0] for i in sorted(kept)], previous)
    reason = (f"{len(ordered)} of {len(items)} chunks fit {budget} tokens" if over
              else f"all {len(ordered)} distinct chunks fit")
    return Selection("selected", reason, tuple(ordered), tuple(key_of(e) for e in ordered),
                     len(items), dropped, over, used, budget)


def language_of(req: InfillRequest) -> tuple[str | None, str]:
    """(language, reason): explicit, the edited file's name, the editor's chunks' file names
    (most common; the most recent on a tie), then the syntax before the cursor."""
    if req.language:
        return req.language, f"explicit language {req.language!r}"
    if req.filename and (lang := _by_name(req.filename)):
        return lang, f"file name {req.filename!r}"
    votes: dict[str, tuple[int, int]] = {}
    for i, e in enumerate(req.extra):
        if lang := _by_name(e.filename):
            count, _ = votes.get(lang, (0, 0))
            votes[lang] = (count + 1, i)
    if votes:
        lang = max(votes, key=lambda k: votes[k])
        return lang, f"file names of {votes[lang][0]} context chunk(s)"
    text = (req.prefix + req.prompt)[-SYNTAX_CHARS:] + req.suffix[:SYNTAX_CHARS // 4]
    return detect_language(text)


def _by_name(filename: str) -> str | None:
    name = filename.rsplit("/", 1)[-1]
    return canonical(name.rpartition(".")[2]) if "." in name else None


def plan_infill(req: InfillRequest, settings: Settings, cfg: PipelineConfig, n_predict: int,
                previous: tuple[str, ...], clock: Callable[[], float] = time.perf_counter
                ) -> tuple[routing.Decision, Selection]:
    """The pure, CPU-bound part: language, route, context selection."""
    started = clock()
    language, why = language_of(req)
    decision = routing.choose(settings, model=req.model, language=language,
                              language_reason=why)
    count = TOKEN_ESTIMATES[decision.route.tokenizer]
    budget = fim_budget(req, decision.route.n_ctx, n_predict, count)
    selection = select(req, cfg, budget, count, previous)
    ms = (clock() - started) * 1000
    return decision, Selection(**{**selection.__dict__, "pipeline_ms": ms})


def passthrough(req: InfillRequest, reason: str) -> Selection:
    """The editor's chunks as they came (the selection could not finish in time)."""
    return Selection("raw", reason, req.extra, tuple(key_of(e) for e in req.extra),
                     len(req.extra), 0, 0, 0, 0)


def quick_route(req: InfillRequest, settings: Settings,
                why: str = "the context selection did not finish") -> routing.Decision:
    """Routing without reading the code (after a selection timeout, or for a prompt the
    client rendered): explicit language or the edited file's name, else the default route."""
    language = req.language or (_by_name(req.filename) if req.filename else None)
    return routing.choose(settings, model=req.model, language=language,
                          language_reason="explicit" if language else f"not detected ({why})")
