"""Assembly (pure): the instruction first, then the message in its order with each code block
cut down to the kept chunks and one comment line per omitted region.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from .chunk import Chunk
from .extract import Instruction
from .language import line_comment
from .segment import Segment

_PLURAL = MappingProxyType({
    "class": "classes", "impl": "impl blocks", "imports": "import blocks",
    "declarations": "declaration blocks", "statements": "statement blocks",
    "field": "field blocks"})
_SINGULAR = MappingProxyType({
    "impl": "impl block", "imports": "import block", "declarations": "declaration block",
    "statements": "statement block", "field": "field block"})
_MAX_NAMES = 4


@dataclass(frozen=True)
class Assembled:
    """The reduced message: chat form and completion form."""

    content: str  # the user message for chat models
    prompt: str  # the same, framed for base (completion) models

    @property
    def messages(self) -> list[dict[str, str]]:
        """The chat message list for a chat model."""
        return [{"role": "user", "content": self.content}]


def completion_prompt(content: str) -> str:
    """Frame a message for a base model: instruction-tuned formats read it as a task."""
    return f"### Instruction:\n{content}\n\n### Response:\n"


def assemble(segments: Sequence[Segment], instruction: Instruction, chunks: Sequence[Chunk],
             kept: Collection[int], duplicate_of: Mapping[int, int], *,
             context: bool = True) -> Assembled:
    """Instruction first; then prose (without the instruction) and reduced code blocks."""
    by_block = _by_block(chunks)
    names = {c.index: c.name for c in chunks}
    cut: dict[int, list[tuple[int, int]]] = {}
    for d in instruction.directives:
        if d.source == "prose":
            cut.setdefault(d.segment, []).append((d.start, d.end))
    parts = [instruction.text]
    for i, seg in enumerate(segments):
        if seg.kind == "prose":
            rest = _without(seg.text, cut.get(i, []))
            if context and rest:
                parts.append(rest)
        elif any(c.index in kept for c in by_block.get(i, ())):
            # A block with nothing kept is left out whole: the instruction alone is the floor.
            code = render_block(seg.text, by_block[i], kept, duplicate_of, names, seg.tag)
            tag = seg.tag or (by_block[i][0].language or "")
            parts.append(f"```{tag}\n{code}\n```")
    content = "\n\n".join(parts)
    return Assembled(content, completion_prompt(content))


def predicted(segments: Sequence[Segment], chunks: Sequence[Chunk],
              chosen: Collection[int]) -> str:
    """The code of the `chosen` chunks in the message's order, without notes on what was left
    out (an answer repeats code, not our notes); runs apart are a blank line apart."""
    by_block = _by_block(chunks)
    return "\n\n".join(
        render_block(seg.text, by_block[i], chosen, {}, {}, notes=False)
        for i, seg in enumerate(segments)
        if any(c.index in chosen for c in by_block.get(i, ())))


def _by_block(chunks: Sequence[Chunk]) -> dict[int, list[Chunk]]:
    by_block: dict[int, list[Chunk]] = {}
    for c in chunks:
        by_block.setdefault(c.block, []).append(c)
    return by_block


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    """Prose with the instruction's sentences taken out (they are sent first)."""
    if not spans:
        return text.strip()
    out, pos = [], 0
    for start, end in sorted(spans):
        out.append(text[pos:start])
        pos = end
    out.append(text[pos:])
    return "\n".join(line.rstrip() for line in "".join(out).strip().split("\n")
                     if line.strip() not in ("-", "*", "+"))


def render_block(code: str, chunks: Sequence[Chunk], kept: Collection[int],
                 duplicate_of: Mapping[int, int], names: Mapping[int, str | None],
                 tag: str | None = None, *, notes: bool = True) -> str:
    """The block's kept lines in order, with a note (or, without `notes`, a blank line) where
    chunks were left out."""
    lines = code.split("\n")
    comment = line_comment(chunks[0].language if chunks else None, tag)
    out: list[str] = []
    cursor = 0  # last line emitted, 1-based
    omitted: list[Chunk] = []

    def gap_before(line: int) -> bool:
        """Whether the original had a blank line right before `line` (1-based)."""
        return line >= 2 and not lines[line - 2].strip() and bool(out)

    def flush(next_line: int) -> None:
        if not notes:
            if next_line and out and out[-1] != "":
                out.append("")
            omitted.clear()
            return
        first = lines[max(omitted[0].start, cursor + 1) - 1]
        indent = first[: len(first) - len(first.lstrip())]
        if gap_before(omitted[0].start) and out[-1] != "":
            out.append("")
        hidden = (next_line or len(lines) + 1) - cursor - 1  # windows overlap: count lines
        out.append(f"{indent}{comment} … {describe(omitted, duplicate_of, names, hidden)} …")
        if next_line and gap_before(next_line):
            out.append("")
        omitted.clear()

    for c in sorted(chunks, key=lambda c: (c.start, c.end)):
        if c.index not in kept:
            if c.end > cursor:
                omitted.append(c)
            continue
        if omitted:
            flush(c.start)
        elif gap_before(max(c.start, cursor + 1)) and out[-1] != "":
            out.append("")
        out.extend(lines[max(c.start, cursor + 1) - 1 : c.end])
        cursor = max(cursor, c.end)
    if omitted:
        flush(0)
    return "\n".join(out)


def describe(omitted: Sequence[Chunk], duplicate_of: Mapping[int, int],
             names: Mapping[int, str | None], hidden_lines: int | None = None) -> str:
    """`8 similar functions omitted (like fetch_user): fetch_order, …; 1 class omitted: Cli`."""
    headers = {c.index for c in omitted if c.role == "header"}
    similar: dict[tuple[str, int], list[Chunk]] = {}
    other: dict[str, list[Chunk]] = {}
    parts: Counter[str] = Counter()
    lines = 0
    for c in omitted:
        if c.role == "footer" or (c.role != "header" and headers.intersection(c.needs)):
            continue  # told as part of its container
        if c.index in duplicate_of:
            similar.setdefault((c.kind, duplicate_of[c.index]), []).append(c)
        elif c.role == "part":
            parts[c.name or "a function"] += 1
        elif c.kind in ("window", "block"):
            lines += c.end - c.start + 1
        else:
            other.setdefault(c.kind, []).append(c)
    phrases = [f"{len(items)} similar {_plural(kind, len(items))} omitted (like "
               f"{names.get(rep) or 'the one kept'}){_names(items)}"
               for (kind, rep), items in similar.items()]
    phrases += [f"{n} more part{'s' if n > 1 else ''} of {name} omitted"
                for name, n in parts.items()]
    phrases += [f"{len(items)} {_plural(kind, len(items))} omitted{_names(items)}"
                for kind, items in other.items()]
    if lines:
        phrases.append(f"{hidden_lines if hidden_lines is not None else lines} lines omitted")
    return "; ".join(phrases) or "omitted"


def _names(items: Sequence[Chunk]) -> str:
    named = list(dict.fromkeys(c.name for c in items if c.name))
    if not named:
        return ""
    more = len(named) - _MAX_NAMES
    return ": " + ", ".join(named[:_MAX_NAMES]) + (f", +{more} more" if more > 0 else "")


def _plural(kind: str, n: int) -> str:
    if n == 1:
        return _SINGULAR.get(kind, kind)
    return _PLURAL.get(kind, kind + "s")
