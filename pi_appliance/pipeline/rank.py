"""Task-aware ranking (pure): chunks that define or use what the instruction names first, then
BM25 relevance to the instruction; then the picks, each with the chunks it needs to read right.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from .chunk import BODY_KINDS, Chunk
from .config import PipelineConfig
from .extract import Instruction

DEFINES, MEMBER_OF_NAMED, HOLDS_TODO, USES = 10.0, 8.0, 10.0, 3.0
_GLUE_DEPS = frozenset({"imports", "declarations", "macro", "field", "statements", "struct",
                        "enum", "interface"})
_WORD = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|[A-Z]")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_COMPOUND = re.compile(r"[A-Za-z0-9]_+[A-Za-z0-9]|[a-z][A-Z]")  # snake_case or camelCase
_STOP = frozenset((
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "of", "to", "in", "on",
    "for", "with", "and", "or", "but", "not", "no", "is", "are", "be", "was", "were", "been",
    "being", "do", "does", "did", "so", "as", "at", "by", "from", "into", "than", "then",
    "there", "here", "my", "our", "your", "we", "you", "i", "me", "us", "please", "can",
    "could", "would", "should", "will", "just", "also", "all", "any", "some", "each", "every",
    "which", "what", "when", "where", "why", "how", "who", "whom", "whose", "if", "else", "up",
    "out", "about", "over", "under", "more", "most", "less", "very", "too", "only", "own",
    "same", "such", "make", "sure", "keep", "code", "function", "functions", "method",
    "methods", "class", "classes", "file", "files", "module", "program", "snippet", "below",
    "above", "following", "thing", "things", "way", "use", "using", "want", "need", "like",
    "help", "refactor", "rewrite", "convert", "add", "optimize", "optimise", "explain", "fix",
    "write", "change", "rename", "implement", "remove", "update", "simplify", "clean",
    "improve", "version", "instead", "new", "old", "still", "them", "they", "their", "one",
    "two", "bug", "bugs", "issue", "problem", "work", "works", "working", "doesn't", "don't",
    "isn't", "test", "tests", "unit",
))
# Words a task implies that its code rarely spells: "make it async" is about the blocking I/O.
_EXPANSIONS = MappingProxyType({
    frozenset({"async", "await", "asyncio", "aiohttp", "httpx", "concurrent", "concurrently",
               "asynchronous", "nonblocking", "coroutine", "coroutines", "promise", "promises",
               "tokio", "future", "futures", "thread", "threads", "parallel"}):
        ("requests", "get", "post", "sleep", "urlopen", "http", "session", "fetch", "response",
         "resp", "read", "write", "open", "connect", "execute", "cursor", "socket", "recv",
         "send", "query", "then", "callback", "blocking"),
    frozenset({"sql", "database", "db", "queries", "transaction"}):
        ("cursor", "execute", "query", "commit", "connect", "conn", "fetchall", "fetchone"),
})


@dataclass(frozen=True)
class Scored:
    """A chunk, its relevance to the instruction, and why (for stats and debugging)."""

    chunk: Chunk
    score: float
    why: tuple[str, ...]


def term_counts(text: str, split: dict[str, list[str]] | None = None) -> Counter[str]:
    """BM25 terms with their counts: words and identifier parts (snake_case and camelCase
    split), lowered, plus compound identifiers whole. `split` memoizes the split of each
    distinct word across the calls of one ranking."""
    split = {} if split is None else split
    counts: Counter[str] = Counter()
    for word, n in Counter(_IDENT.findall(text)).items():
        parts = split.get(word)
        if parts is None:
            parts = split[word] = [p.lower() for p in _WORD.findall(word)] + (
                [word.lower()] if _COMPOUND.search(word) else [])
        for part in parts:
            counts[part] += n
    for term in [t for t in counts if len(t) < 2 or t in _STOP]:
        del counts[term]
    return counts


def terms(text: str) -> list[str]:
    """The distinct BM25 terms of `text`, in order of first appearance."""
    return list(term_counts(text))


def query_terms(instruction: Instruction, named: Sequence[str]) -> list[str]:
    """The instruction's terms, the names it mentions, and what its task implies."""
    out = terms(instruction.text) + [n.lower() for name in named for n in name.split(".")]
    present = set(out)
    for trigger, extra in _EXPANSIONS.items():
        if trigger & present:
            out.extend(extra)
    return list(dict.fromkeys(out))


def resolve_named(instruction: Instruction, chunks: Sequence[Chunk]) -> tuple[str, ...]:
    """Names the instruction means in this code: mentions the code has, plain words naming
    a chunk (`explain the Parser class`). A lower-case word is an English word as well: it
    names code only when nothing else in the instruction does (in "fix `median` so that it
    returns the mean of the two middle values", `mean` is not a second target)."""
    known = {n for c in chunks for n in (c.defines | c.uses)}
    chunk_names = {part for c in chunks if c.name for part in (c.name, *c.name.split("."))}
    out = [m for m in instruction.mentions
           if m in known or m in chunk_names or m.split(".")[-1] in known]
    parts = {p for m in out for p in m.split(".")[:-1]} | {m.split(".")[-1] for m in out}
    words = [w for w in re.findall(r"[A-Za-z_]\w{2,}", instruction.text)
             if w in chunk_names and w.lower() not in _STOP and w not in parts]
    coded = [w for w in words if not w.isalpha() or not w.islower()]
    out += coded
    if not out:
        out = words
    return tuple(dict.fromkeys(out))


def _named_hits(chunk: Chunk, named: Sequence[str]) -> list[tuple[float, str]]:
    hits: list[tuple[float, str]] = []
    for n in named:
        last = n.split(".")[-1]
        qualified = "." in n
        own = chunk.name is not None and (chunk.name == n or chunk.name.endswith("." + n))
        if own or (not qualified and n in chunk.defines) or (
                qualified and chunk.parent == n.rsplit(".", 1)[0] and last in chunk.defines):
            hits.append((DEFINES, f"defines {n}"))
        elif chunk.parent and (chunk.parent == n or chunk.parent.endswith("." + n)):
            hits.append((MEMBER_OF_NAMED, f"member of {n}"))
        elif last in chunk.uses:
            hits.append((USES, f"uses {n}"))
    return hits


def protected(chunks: Sequence[Chunk], instruction: Instruction,
              named: Sequence[str]) -> set[int]:
    """Chunks that must survive deduplication: the ones the instruction is about."""
    todo = set(instruction.comment_lines)
    return {c.index for c in chunks
            if any(w >= MEMBER_OF_NAMED for w, _ in _named_hits(c, named))
            or any(b == c.block and c.start <= line + 1 <= c.end for b, line in todo)}


def rank(chunks: Sequence[Chunk], instruction: Instruction, named: Sequence[str],
         cfg: PipelineConfig) -> list[Scored]:
    """Chunks by relevance, best first; ties keep the original order."""
    query = query_terms(instruction, named)
    split: dict[str, list[str]] = {}
    docs = [term_counts(c.text, split) for c in chunks]
    n = len(docs)
    avgdl = sum(sum(d.values()) for d in docs) / n if n else 0.0
    # Each document is read for the query's terms it holds, in query order (so the float sums
    # are the same as a walk over the query): not the whole query per chunk, which is
    # quadratic when a long instruction meets many chunks.
    position = {t: i for i, t in enumerate(query)}
    present = [sorted((t for t in d if t in position), key=position.__getitem__) for d in docs]
    df = Counter(t for terms_in in present for t in terms_in)
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in query}
    todo = set(instruction.comment_lines)
    out: list[Scored] = []
    for c, doc, terms_in in zip(chunks, docs, present, strict=True):
        why: list[str] = []
        score = 0.0
        for weight, reason in _named_hits(c, named):
            score += weight
            why.append(reason)
        if any(b == c.block and c.start <= line + 1 <= c.end for b, line in todo):
            score += HOLDS_TODO
            why.append("holds the TODO")
        length = sum(doc.values())
        bm25 = 0.0
        for t in terms_in:
            tf = doc[t]
            if tf:
                norm = cfg.bm25_k1 * (1 - cfg.bm25_b + cfg.bm25_b * length / (avgdl or 1))
                bm25 += idf[t] * tf * (cfg.bm25_k1 + 1) / (tf + norm)
        if bm25:
            score += bm25
            why.append(f"bm25 {bm25:.2f}")
        out.append(Scored(c, score, tuple(why)))
    order = {s.chunk.index: i for i, s in enumerate(out)}
    return sorted(out, key=lambda s: (-s.score, order[s.chunk.index]))


def _unit(chunk: Chunk, named: Sequence[str]) -> tuple[object, ...]:
    """What counts once toward top-k: a whole named container, a split function, a chunk."""
    container = chunk.name if chunk.role in ("header", "footer") else chunk.parent
    if container and any(container == n or container.endswith("." + n) for n in named):
        return ("container", chunk.block, container)
    if chunk.part:
        return ("parts", chunk.block, chunk.parent, chunk.name)
    return ("chunk", chunk.index)


def select(scored: Sequence[Scored], named: Sequence[str], cfg: PipelineConfig,
           top_k: int | None = None) -> list[tuple[int, ...]]:
    """Picks, best first: each a chunk index followed by the indices it needs and that no
    earlier pick brought. Candidates are code bodies and named chunks; if nothing scored,
    the largest bodies (or, without any, the largest chunks) stand in."""
    k = top_k or cfg.top_k
    by_index: Mapping[int, Chunk] = {s.chunk.index: s.chunk for s in scored}
    candidates = [s for s in scored if s.score > 0 and (
        (s.chunk.kind in BODY_KINDS and s.chunk.role in ("whole", "part")) or s.why)]
    if not candidates:
        bodies = [s for s in scored if s.chunk.kind in BODY_KINDS and s.chunk.role == "whole"]
        rest = [s for s in scored if s.chunk.role in ("whole", "part")]
        candidates = sorted(bodies or rest, key=lambda s: -len(s.chunk.text))
    # Who defines each name, in ranking order: a pick looks up the names it uses instead of
    # reading every chunk (quadratic when a named class has hundreds of members).
    definers: dict[str, list[Chunk]] = {}
    for c in by_index.values():
        if c.role == "whole":
            for name in c.defines:
                definers.setdefault(name, []).append(c)
    rank_of = {i: r for r, i in enumerate(by_index)}
    picks: list[tuple[int, ...]] = []
    units: set[tuple[object, ...]] = set()
    taken: set[int] = set()
    for s in candidates:
        unit = _unit(s.chunk, named)
        if unit not in units and len(units) >= k:
            continue
        units.add(unit)
        if s.chunk.index in taken:
            continue
        # Only the code the task is about (named, holding the TODO) brings its helpers too.
        target = any(w.startswith(("defines", "member of", "holds")) for w in s.why)
        group = [s.chunk.index, *_needs(s.chunk, by_index, definers, rank_of, cfg,
                                        helpers=target)]
        fresh = tuple(i for i in dict.fromkeys(group) if i not in taken)
        taken.update(fresh)
        picks.append(fresh)
    return picks


def _needs(chunk: Chunk, by_index: Mapping[int, Chunk], definers: Mapping[str, list[Chunk]],
           rank_of: Mapping[int, int], cfg: PipelineConfig, *,
           helpers: bool = False) -> list[int]:
    """Structural needs (class header and footer, a function's first part), transitively;
    cheap definitions of names the chunk uses (imports, constants, small types, and the
    types those use); with `helpers`, small functions it calls."""
    out: list[int] = []
    stack = list(chunk.needs)
    while stack:
        i = stack.pop()
        if i in by_index and i not in out and i != chunk.index:
            out.append(i)
            stack.extend(by_index[i].needs)
    # A method reads wrong without the type it belongs to (`struct Inventory` for its impl).
    wanted = chunk.uses | {chunk.parent} if chunk.parent else chunk.uses
    for _ in range(2):  # a type the chunk uses, and the types that one uses
        named_by = {o.index: o for name in wanted for o in definers.get(name, ())}
        found = [o for o in sorted(named_by.values(), key=lambda o: rank_of[o.index])
                 if o.index != chunk.index and o.index not in out and o.block == chunk.block
                 and _cheap(o, helpers, cfg)]
        for other in found:
            out.append(other.index)
            out.extend(n for n in other.needs if n in by_index and n not in out)
        wanted = frozenset().union(*(o.uses for o in found if o.kind != "function"))
        helpers = False
    return out


def _cheap(chunk: Chunk, helpers: bool, cfg: PipelineConfig) -> bool:
    if chunk.kind in _GLUE_DEPS:
        return len(chunk.text) <= cfg.dependency_max_chars
    return helpers and chunk.kind == "function" and len(chunk.text) <= cfg.dependency_max_chars // 2
