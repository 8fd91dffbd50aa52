"""Split a user message into prose and code segments (pure): fences first, then line cues."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

# Possessive runs, and no start inside a run: a flood of markers costs one pass, not one per
# position in it.
_OPEN_FENCE = re.compile(r"((?<!`)`{3,}+|(?<!~)~{3,}+)([^\n`]*+)\n")

# Every pattern below reads one line, possibly a 200 KB one (a minified bundle): quantifiers
# that could give characters to each other are possessive (`*+`, `++`), so the engine reads
# each run once instead of trying every split of it.
# A line opening with one of these is code whatever follows: prose never starts so.
_CODE_START = re.compile(r"""^(?:
    (?:async\s+)?def\s+\w+\s*\( | class\s+\w+\s*[:(<{] | from\s+[\w.]+\s+import\b
    | import\s+[\w.{*"']+\s*(?:;|$|from\b|as\b|,)
    | (?:pub(?:\([\w:]+\))?\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+\w+\s*[<(]
    | (?:pub\s+)?(?:struct|enum|trait|mod|union)\s+\w+\s*[{;<(] | impl\s*[<\w] | use\s+[\w:]++.*;
    | let\s+(?:mut\s+)?\w+\s*[:=] | (?:const|var|let)\s+[\w{\[]+\s*[:=]
    | (?:export\s+)?(?:async\s+)?function\s*\w*\s*\(
    | export\s+(?:default|const|class|interface|type|function|\{)
    | (?:export\s+)?interface\s+\w+\s*[{<] | type\s+\w+\s*= | template\s*< | namespace\s+\w*\s*\{
    | \#\s*(?:include|define|if|ifn?def|endif|else|pragma|undef)\b | \#!?\[ | typedef\s
    | //| /\* | \*/ | [{}] | [rRbBuUfF]{0,2}(?:\"\"\"|\'\'\') | (?:public|private|protected):
)""", re.X)
# Weaker: code unless the line otherwise reads as a sentence ("if you can, explain why:").
_CODE_LIKE = re.compile(r"""^(?:
    @\w+ | [()\[\]] | \# | return\b.*[;)]$ | return$
    | (?:if|for|while|switch|elif|with|except)\b.*[:{)]$
    | (?:else|try|finally|do)\b\s*[:{]?$ | (?:pass|break|continue|None)$ | print\( | console\.\w+\(
    | (?:static|extern|inline|virtual|unsigned|const|volatile)\s | class\s+\w+\s*$
)""", re.X)
# Also weaker: a C declaration `Type *name(…` on a line ending in `)`, `{` or `,` (checked
# apart). Type and name may split one word (`Foobar(` reads as `Fooba r(`): that case is its
# own alternative, so a long word is read once rather than once per split.
_C_DECL = re.compile(r"""(?:
    (?:void|int|char|float|double|bool|auto|long|short|size_t)\s*+\**+\s*+\w++\s*+\(
    | [A-Z]\w++\s*+\( | [A-Z]\w*+(?:<.*>)?\s*+\**+\s*+\w++\s*+\(
)""", re.X)
# `) -> T` anywhere ends like code too; searched apart, as `->.*$` tried after each `)` would
# read the rest of the line once per `)`.
_CODE_END = re.compile(r"(?:[;{}\[(,]|\)\s*+:?|=>|\\)$")
_ARROW = re.compile(r"\)\s*+->")
_CODE_INNER = re.compile(r"^\w[\w.\[\]]*+\s*+(?:[-+*/%|&^]|<<|>>|//)?=[^=]"
                         r"|==|!=|->|::|\+\+|&&|\|\|")
_WORD = re.compile(r"[A-Za-z][a-z']+")


@dataclass(frozen=True)
class Segment:
    """A run of lines of one kind: prose, or code (fenced or bare)."""

    kind: Literal["prose", "code"]
    text: str
    start_line: int  # 0-based line of the message where the segment's text starts
    tag: str | None = None  # the fence's info string, for fenced code
    fenced: bool = False


def segment(text: str) -> list[Segment]:
    """Prose and code segments of `text`, in order; fenced blocks are code, the rest by cues."""
    out: list[Segment] = []
    pos = line = 0  # line: the number of newlines before pos, counted as pos moves on
    for start, end, body, info in fences(text):
        out.extend(_split_unfenced(text[pos:start], line, has_fences=True))
        line += text.count("\n", pos, start)
        tag = info.split()[0] if info.strip() else None
        out.append(Segment("code", body, line + 1, tag, fenced=True))
        line += text.count("\n", start, end)
        pos = end
    out.extend(_split_unfenced(text[pos:], line, has_fences=pos > 0))
    return [s for s in out if s.text.strip()]


def fences(text: str) -> Iterator[tuple[int, int, str, str]]:
    """(start, end, body, info string) of each fenced block, an unclosed one running to the
    end; found by plain string search, which is much faster than one regex for the block."""
    pos = 0
    while m := _OPEN_FENCE.search(text, pos):
        start = text.rfind("\n", 0, m.start()) + 1
        if text[start : m.start()].strip(" \t"):
            pos = m.end()  # not at the start of a line: inline backticks, not a fence
            continue
        fence, body_start = m.group(1), m.end()
        body_end = end = len(text)
        # The closing fence is a line of the fence (or longer) with only blanks around it;
        # lines are read once each, however many fence markers a line holds.
        line_start = body_start
        while line_start < len(text):
            line_end = text.find("\n", line_start)
            line_end = len(text) if line_end < 0 else line_end
            line = text[line_start:line_end].lstrip(" \t")
            if line.startswith(fence) and not line.strip(" \t" + fence[0]):
                body_end, end = max(body_start, line_start - 1), line_end
                break
            line_start = line_end + 1
        yield start, end, text[body_start:body_end], m.group(2).strip()
        pos = end


def _split_unfenced(text: str, first_line: int, *, has_fences: bool) -> list[Segment]:
    """Outside fences: all prose if the message fences its code, else lines by cues."""
    if not text.strip():
        return []
    lines = text.split("\n")
    if has_fences:
        return [Segment("prose", text.strip("\n"), first_line + _leading_blank(lines))]
    kinds = _classify(lines)
    out: list[Segment] = []
    start = 0
    for i in range(1, len(lines) + 1):
        if i == len(lines) or kinds[i] != kinds[start]:
            chunk = "\n".join(lines[start:i])
            if chunk.strip():
                lead = _leading_blank(lines[start:i])
                out.append(Segment(kinds[start], chunk.strip("\n"), first_line + start + lead))
            start = i
    return out


def _leading_blank(lines: list[str]) -> int:
    return next((i for i, line in enumerate(lines) if line.strip()), 0)


def _classify(lines: list[str]) -> list[Literal["prose", "code"]]:
    """Label each line prose or code; blank lines and string/comment bodies follow context."""
    kinds: list[Literal["prose", "code"] | None] = []
    in_block = None  # the closing delimiter of a multi-line string or comment we are in
    for line in lines:
        stripped = line.strip()
        if in_block:
            kinds.append("code")
            if in_block in stripped:
                in_block = None
            continue
        if not stripped:
            kinds.append(None)
            continue
        kinds.append("code" if is_code_line(line) else "prose")
        for opener, closer in (('"""', '"""'), ("'''", "'''"), ("/*", "*/")):
            if opener == closer:
                opens = stripped.count(opener) % 2 == 1
            else:
                opens = opener in stripped and closer not in stripped.rsplit(opener, 1)[1]
            if opens:
                in_block = closer
                kinds[-1] = "code"
                break
    return _fill_blanks(kinds)


def _fill_blanks(kinds: list[Literal["prose", "code"] | None]) -> list[Literal["prose", "code"]]:
    """A blank line belongs to code when code is on both sides of it, else to prose."""
    following: list[Literal["prose", "code"] | None] = []  # the next non-blank kind after i
    nxt: Literal["prose", "code"] | None = None
    for kind in reversed(kinds):
        following.append(nxt)
        nxt = kind if kind is not None else nxt
    following.reverse()
    out: list[Literal["prose", "code"]] = []
    prev: Literal["prose", "code"] | None = None
    for kind, after in zip(kinds, following, strict=True):
        if kind is not None:
            out.append(kind)
            prev = kind
            continue
        out.append("code" if prev == "code" and after == "code" else "prose")
    return out


def is_code_line(line: str) -> bool:
    """Whether a non-blank line outside fences reads as code rather than prose."""
    if line[:1] in (" ", "\t") and not re.match(r"\s+(?:[-*+]|\d+[.)])\s", line):
        return True  # indented (and not a markdown list item)
    s = line.strip()
    if _CODE_START.match(s):
        return True
    if (_CODE_LIKE.match(s) or (_C_DECL.match(s) and s.endswith((")", "{", ",")))
            or _CODE_END.search(s) or _ARROW.search(s) or _CODE_INNER.search(s)):
        return not _reads_as_sentence(s)
    return len(_WORD.findall(s)) < 2 and not s.endswith((".", "?", "!"))


def _reads_as_sentence(s: str) -> bool:
    """Several plain words, mostly letters, ending like a sentence: prose despite a cue."""
    words = _WORD.findall(s)
    letters = sum(ch.isalpha() or ch == " " for ch in s)
    return (len(words) >= 4 and letters >= 0.8 * len(s)
            and s[-1] in ".?!:" and not s.endswith(("{:", "):", "]:")))
