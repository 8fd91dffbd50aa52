"""Brace-language splitter (pure) for JavaScript/TypeScript, Rust, C and C++.

Works on masked lines (scan.py): an item at a nesting level ends where the brace depth comes
back to that level on a line ending in `}` or `;` (or, for JavaScript without semicolons, right
before the next declaration). The item's header, read with a few regexes, gives its kind and
name; containers (class, impl, trait, namespace) are split into header, members and footer.
"""

from __future__ import annotations

import re
from dataclasses import replace
from types import MappingProxyType

from .config import PipelineConfig
from .scan import Lines, identifiers
from .spans import Span, split_inside

BRACE_LANGUAGES = frozenset({"javascript", "typescript", "rust", "c", "cpp"})
_CONTAINERS = frozenset({"class", "impl", "trait", "namespace"})
_GLUE = frozenset({"imports", "declarations", "macro", "field", "statements"})

_PREFIX = re.compile(r"^(?:\s*(?:\#!?\[[^\]]*\]|@[\w.]+(?:\([^)]*\))?|export\b|default\b|declare\b"
                     r"|pub(?:\([^)]*\))?|async\b(?!\s*[(=])|unsafe\b|const(?=\s+fn)"
                     r"|extern\s+\"\s*\"(?=\s+fn)|static\b|inline\b|virtual\b|explicit\b"
                     r"|constexpr\b|(?:public|private|protected)\s*:|(?:public|private|protected)"
                     r"\b|readonly\b|abstract\b|override\b|friend\b|template\s*<[^{;]*?>)\s*)+")
# A C/C++ function: any return type, then the (maybe qualified) name, parameters and `{`.
# After the parameters anything but `;` may come before the `{` (const, noexcept, `-> T`, an
# initializer list): one character class, as nested alternatives backtrack exponentially.
# The `)` before the `{` is checked by a lookahead (the first of `)`, `;`, `{` after `(` is a
# `)`), as `\([^;{]*\)[^;{]*\{` would try each `)` with a fresh read to the `{`.
_C_FUNCTION = (r"(?:[^(=;{]*?[\s*&>])?(?P<name>(?:\w+::)*~?\w+|operator\s*[^\s(]+)\s*"
               r"\((?=[^;{)]*+\))[^;{]*+\{")
_SOURCES = {
    "rust": (
        ("impl", r"impl\b(?:\s*<[^{]*?>)?\s+(?:[\w:<>,' ]+?\s+for\s+)?(?P<name>[\w:]+)"),
        ("function", r"fn\s+(?P<name>\w+)"),
        ("struct", r"(?:struct|union)\s+(?P<name>\w+)"),
        ("enum", r"enum\s+(?P<name>\w+)"),
        ("trait", r"trait\s+(?P<name>\w+)"),
        ("namespace", r"mod\s+(?P<name>\w+)\s*\{"),
        ("macro", r"macro_rules!\s*(?P<name>\w+)"),
        ("imports", r"(?:use|extern\s+crate|mod)\b"),
        ("declarations", r"(?:const|static|type)\s+(?:mut\s+)?(?P<name>\w+)"),
    ),
    "javascript": (
        ("imports", r"import\b|(?:const|let|var)\s+[\w{}, :]+=\s*require\("),
        ("function", r"function\s*\*?\s*(?P<name>\w+)"),
        ("class", r"class\s+(?P<name>\w+)"),
        ("function", r"(?:const|let|var)\s+(?P<name>\w+)\s*(?::[^=]*)?=\s*(?:async\s+)?"
                     r"(?:function\b|\([^)]*\)\s*(?::[^=]*)?=>|\w+\s*=>)"),
        ("interface", r"interface\s+(?P<name>\w+)"),
        ("enum", r"(?:const\s+)?enum\s+(?P<name>\w+)"),
        ("namespace", r"(?:namespace|module)\s+(?P<name>[\w.]+)\s*\{"),
        ("declarations", r"(?:const|let|var|type)\s+(?P<name>\w+)"),
    ),
    "c": (
        ("namespace", r"namespace\s*(?P<name>[\w:]*)\s*\{|extern\s+\"\s*\"\s*\{"),
        ("class", r"(?:typedef\s+)?(?:class|struct|union)\s+(?:\w+\s+)*?(?P<name>\w+)\s*"
                  r"(?:final\s*)?(?::[^{;]*)?\{"),
        ("enum", r"(?:typedef\s+)?enum\s+(?:class\s+|struct\s+)?(?P<name>\w+)"),
        ("function", _C_FUNCTION),
        # `\b`: a name is tried from its first letter only, not once per letter.
        ("declarations", r"typedef\b.*?\b(?P<name>\w++)\s*;\s*$"
                         r"|.*?\b(?P<name2>\w++)\s*(?:\(|\[|=|;)"),
    ),
}
_PATTERNS = MappingProxyType({family: tuple((kind, re.compile(p, re.S)) for kind, p in pats)
                              for family, pats in _SOURCES.items()})
del _SOURCES
_MEMBER_FUNCTION = MappingProxyType({
    "javascript": re.compile(r"(?:(?:static|async|get|set)\s+|\*\s*)*(?P<name>#?\w+)\s*"
                             r"(?:<[^>]*>)?\s*\(.*\)\s*(?::[^{;]*)?\{"
                             r"|(?P<name2>\w+)\s*=\s*(?:async\s+)?(?:\([^)]*\)|\w+)\s*=>", re.S),
    "rust": re.compile(r"fn\s+(?P<name>\w+)[^;]*$"),
    "c": re.compile(_C_FUNCTION, re.S),
})
_HEADER_CHARS = 400
# Containers opened inside containers at most this deep (real code stays under 5): each level
# reads its whole body again, and the recursion must stay far from Python's limit.
_MAX_NESTING = 16
_NOT_NAMES = frozenset({"if", "for", "while", "switch", "catch", "return", "sizeof", "with"})
_CONTINUES = re.compile(r"(?:[,(\[{=+\-*/%&|?:.<>!]|=>|&&|\|\|)\s*$")
_JS_STATEMENT = re.compile(r"\s*(?:import|export|const|let|var|function|async|class|interface|"
                           r"type|enum|namespace|module|declare|abstract|@)\b")


_FAMILIES = MappingProxyType({"typescript": "javascript", "cpp": "c"})


def _family(language: str) -> str:
    """The pattern set a language uses: TypeScript reads as JavaScript, C++ as C."""
    return _FAMILIES.get(language, language)


def brace_spans(lines: Lines, language: str, cfg: PipelineConfig) -> list[Span] | None:
    """Spans of a brace-language block, or None when no item boundary was found."""
    items = _items(lines, 0, len(lines.raw) - 1, 0, language)
    if not items:
        return None
    spans: list[Span] = []
    prev_end = -1
    for start, end in items:
        spans.extend(_item(lines, prev_end + 1, start, end, 0, language, None, cfg))
        prev_end = end
    return _merge_glue(spans)


def _merge_glue(spans: list[Span]) -> list[Span]:
    """Runs of one-line glue (imports, `#define`s, constants) become one span each."""
    out: list[Span] = []
    for span in spans:
        prev = out[-1] if out else None
        if (prev is not None and span.kind in _GLUE and prev.kind == span.kind
                and prev.role == span.role == "whole" and prev.parent == span.parent
                and prev.group == span.group and span.start == prev.end + 1
                and span.end - span.start < 3):
            out[-1] = replace(prev, name=None, end=span.end, defines=prev.defines + span.defines)
        else:
            out.append(span)
    return out


def _items(lines: Lines, lo: int, hi: int, base: int, language: str) -> list[tuple[int, int]]:
    """(first code line, last line) of each item whose lines start at brace depth `base`."""
    masked, depth, paren = lines.masked, lines.depth, lines.paren
    n = len(masked)
    base_paren = paren[lo] if lo < n else 0
    js = _family(language) == "javascript"
    items: list[tuple[int, int]] = []
    start: int | None = None
    for i in range(lo, hi + 1):
        code = masked[i].strip()
        if start is None:
            if not code:
                continue
            start = i
        after = depth[i + 1] if i + 1 < n else lines.end_depth
        paren_after = paren[i + 1] if i + 1 < n else 0
        if after > base or paren_after > base_paren:
            continue
        if code.startswith("#") and language in ("c", "cpp"):
            if not lines.raw[i].rstrip().endswith("\\"):
                items.append((start, i))
                start = None
        elif code.endswith(("}", ";", "};", "},", "})", ");")) or (
                js and code and not _CONTINUES.search(code) and _next_starts_item(lines, i, hi)):
            items.append((start, i))
            start = None
    if start is not None:
        items.append((start, hi))
    return items


def _next_starts_item(lines: Lines, i: int, hi: int) -> bool:
    for j in range(i + 1, hi + 1):
        if lines.masked[j].strip():
            return bool(_JS_STATEMENT.match(lines.masked[j]))
    return True


def _header(lines: Lines, start: int, end: int, base: int) -> tuple[str, int]:
    """The item's masked text up to its first `{` at this level (at most _HEADER_CHARS: a
    real signature is shorter, and it bounds the regexes' work), and that line."""
    for k in range(start, end + 1):
        if (lines.depth[k + 1] if k + 1 < len(lines.depth) else lines.end_depth) > base:
            break
    else:
        k = end
    return " ".join(m.strip() for m in lines.masked[start : k + 1])[:_HEADER_CHARS], k


def _classify(header: str, raw_first: str, language: str, member: bool) -> tuple[str, str | None]:
    family = _family(language)
    if family == "c" and raw_first.lstrip().startswith("#"):
        define = re.match(r"\s*#\s*define\s+(\w+)", raw_first)
        return ("macro", define.group(1)) if define else ("imports", None)
    text = _PREFIX.sub("", header).strip()
    if member and family in _MEMBER_FUNCTION:
        m = _MEMBER_FUNCTION[family].match(text)
        name = m and (m.group("name") or m.groupdict().get("name2"))
        if name and name.split("::")[-1] not in _NOT_NAMES:
            return "method", name
    for kind, pattern in _PATTERNS[family]:
        m = pattern.match(text)
        if m:
            name = m.groupdict().get("name") or m.groupdict().get("name2")
            if name and name in _NOT_NAMES:
                continue
            if kind == "class" and family == "c" and language == "c":
                kind = "struct"
            return ("field" if member and kind == "declarations" else kind), name or None
    return ("field" if member else "statements"), None


def _item(lines: Lines, lead: int, start: int, end: int, base: int, language: str,
          parent: str | None, cfg: PipelineConfig, *, member: bool = False) -> list[Span]:
    """Spans for one item: whole, split inside when oversized, or a container split open."""
    header, open_line = _header(lines, start, end, base)
    kind, name = _classify(header, lines.raw[start], language, member)
    qualified, owner = name, parent
    if name and "::" in name:  # `int Client::get(…) {` defines a member out of its class
        owner, _, short = name.rpartition("::")
        owner, qualified, name = owner.split("::")[-1], f"{owner.split('::')[-1]}.{short}", short
    elif name and parent:
        qualified = f"{parent}.{name}"
    if kind == "imports":
        defines = tuple(dict.fromkeys(identifiers(" ".join(lines.masked[start : end + 1]))))
    else:
        defines = (name,) if name else ()
    if kind in _CONTAINERS and base < _MAX_NESTING and end > open_line + 1 \
            and lines.masked[end].strip().startswith("}"):
        opened = _container(lines, lead, start, end, open_line, base, language, kind,
                            qualified, name, cfg)
        if opened:
            return opened
    span = Span(kind, qualified, lead, end, owner if owner != qualified else None,
                defines=defines)
    if sum(len(lines.raw[i]) + 1 for i in range(start, end + 1)) <= cfg.max_chunk_chars:
        return [span]
    cuts = [(i, lines.depth[i]) for i in range(open_line + 1, end)
            if lines.masked[i].strip() and lines.paren[i] == lines.paren[start]
            and lines.masked[_prev_code(lines, i)].rstrip().endswith((";", "{", "}", ":"))]
    return split_inside(span, cuts, lines.raw, cfg)


def _prev_code(lines: Lines, i: int) -> int:
    j = i - 1
    while j > 0 and not lines.masked[j].strip():
        j -= 1
    return j


def _container(lines: Lines, lead: int, start: int, end: int, open_line: int, base: int,
               language: str, kind: str, qualified: str | None, name: str | None,
               cfg: PipelineConfig) -> list[Span]:
    members = _items(lines, open_line + 1, end - 1, base + 1, language)
    group = start  # unique within the block: one container per first line
    # Members of a class/impl are qualified with its name; a namespace's read as top level.
    label = None if kind == "namespace" else qualified
    body: list[Span] = []
    prev_end = open_line
    for m_start, m_end in members:
        body.extend(_item(lines, prev_end + 1, m_start, m_end, base + 1, language, label,
                          cfg, member=kind != "namespace"))
        prev_end = m_end
    body = _merge_glue(body)
    functions = sum(s.kind in ("method", "function") and s.part <= 1 for s in body)
    if functions < 2 and kind != "namespace":
        return []
    # Fields before the first method read as part of a class's header.
    first = 0 if kind == "namespace" else next(
        (i for i, s in enumerate(body) if s.kind not in _GLUE or s.role != "whole"), len(body))
    header_end = body[first - 1].end if first else open_line
    out = [Span(kind, qualified, lead, header_end, role="header", group=group,
                defines=(name,) if name else ())]
    for s in body[first:]:
        out.append(s if s.group is not None and s.role in ("header", "footer")
                   else Span(s.kind, s.name, s.start, s.end, s.parent or label, s.role,
                             s.group if s.group is not None else group, s.defines, s.part))
    out.append(Span(kind, qualified, prev_end + 1, end, role="footer", group=group))
    return out
