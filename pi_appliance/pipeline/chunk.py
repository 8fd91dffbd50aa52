"""Chunking (pure): split code at syntax boundaries into chunks that never cut a line.

Python goes through `ast` (chunk_python.py), the brace languages through a lexical splitter
(chunk_braces.py), anything else through overlapping windows of whole lines. Chunks cover
the code's non-blank lines (only windows overlap), so assembly can rebuild any subset.
"""

from __future__ import annotations

from dataclasses import dataclass

from .chunk_braces import BRACE_LANGUAGES, brace_spans
from .chunk_python import python_spans
from .config import PipelineConfig
from .scan import Lines, identifiers, scan
from .spans import Span, trim, window_spans

# Chunk kinds that hold code a task acts on (not glue: imports, headers, closing braces).
BODY_KINDS = frozenset({"function", "method", "class", "struct", "enum", "impl", "trait",
                        "interface", "macro", "namespace", "block", "window"})


@dataclass(frozen=True)
class Chunk:
    """A contiguous run of whole lines of one code block, with what it defines and uses."""

    index: int  # position in the prompt's list of chunks (all blocks)
    kind: str  # function, method, class, struct, impl, imports, declarations, window, …
    name: str | None  # `fetch_user`, `Client.get` (members are qualified with `.`)
    parent: str | None  # the enclosing class/impl/namespace, if any
    start: int  # first line, 1-based, within the code block
    end: int  # last line, inclusive
    text: str
    masked: str  # text with comments and string contents blanked (scan.mask)
    defines: frozenset[str]
    uses: frozenset[str]
    block: int = 0  # which code block of the message
    role: str = "whole"  # whole | header | footer | part
    part: int = 0  # for a function split inside: 1, 2, …
    needs: tuple[int, ...] = ()  # chunks this one does not read right without
    language: str | None = None


def chunk(code: str, language: str | None, cfg: PipelineConfig, *, block: int = 0,
          first_index: int = 0) -> list[Chunk]:
    """Chunks of one code block; a block under `cfg.chunk_threshold` is a single chunk."""
    lines = scan(code, language)
    spans: list[Span] | None = None
    if len(code) <= cfg.chunk_threshold:
        spans = [Span("block", None, 0, len(lines.raw) - 1)]
    else:
        try:
            if language == "python":
                spans = python_spans(code, lines, cfg)
            elif language in BRACE_LANGUAGES:
                spans = brace_spans(lines, language, cfg)
        except RecursionError:
            spans = None  # nesting past any real code's: the plain windows still cover it
    if not spans:
        spans = window_spans(lines.raw, cfg)
    return _finalize(spans, lines, language, block, first_index)


def _finalize(spans: list[Span], lines: Lines, language: str | None, block: int,
              first_index: int) -> list[Chunk]:
    kept = sorted((t for s in spans if (t := trim(s, lines.raw)) is not None),
                  key=lambda s: (s.start, s.end))
    headers = {s.group: first_index + i for i, s in enumerate(kept) if s.role == "header"}
    footers = {s.group: first_index + i for i, s in enumerate(kept) if s.role == "footer"}
    chunks: list[Chunk] = []
    first_part = None
    for i, s in enumerate(kept):
        idx = first_index + i
        needs: list[int] = []
        if s.group is not None and s.role != "header" and s.group in headers:
            needs.append(headers[s.group])
        if s.group is not None and s.role != "footer" and s.group in footers:
            needs.append(footers[s.group])
        if s.part == 1:
            first_part = idx
        elif s.part > 1 and first_part is not None:
            needs.append(first_part)  # a later part reads wrong without the signature
        text = "\n".join(lines.raw[s.start : s.end + 1])
        masked = "\n".join(lines.masked[s.start : s.end + 1])
        defines = frozenset(s.defines)
        uses = frozenset(identifiers(masked)) - defines
        chunks.append(Chunk(idx, s.kind, s.name, s.parent, s.start + 1, s.end + 1, text, masked,
                            defines, uses, block, s.role, s.part,
                            tuple(n for n in needs if n != idx), language))
    return chunks
