"""Language detection (pure): explicit name, fence tags, file names, then syntax cues."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from types import MappingProxyType

from .segment import is_code_line

ALIASES = MappingProxyType({
    "python": "python", "py": "python", "python3": "python", "py3": "python", "pyi": "python",
    "javascript": "javascript", "js": "javascript", "jsx": "javascript", "mjs": "javascript",
    "cjs": "javascript", "node": "javascript", "nodejs": "javascript",
    "typescript": "typescript", "ts": "typescript", "tsx": "typescript", "mts": "typescript",
    "rust": "rust", "rs": "rust",
    "c": "c", "h": "c",
    "cpp": "cpp", "c++": "cpp", "cc": "cpp", "cxx": "cpp", "hpp": "cpp", "hh": "cpp",
    "hxx": "cpp", "h++": "cpp", "ino": "cpp",
})

# Comment markers for omission notes, by language or, for languages we do not split, by the
# fence tag the user gave (```go, ```sql …).
_LINE_COMMENT = MappingProxyType({
    "python": "#", "javascript": "//", "typescript": "//", "rust": "//", "c": "//", "cpp": "//",
    "go": "//", "java": "//", "kotlin": "//", "swift": "//", "cs": "//", "csharp": "//",
    "scala": "//", "dart": "//", "php": "//", "zig": "//", "sh": "#", "bash": "#", "zsh": "#",
    "shell": "#", "ruby": "#", "rb": "#", "perl": "#", "r": "#", "yaml": "#", "yml": "#",
    "toml": "#", "dockerfile": "#", "makefile": "#", "nix": "#", "elixir": "#", "sql": "--",
    "lua": "--", "haskell": "--", "hs": "--", "lisp": ";", "clojure": ";", "elisp": ";",
    "erlang": "%", "tex": "%", "matlab": "%",
})

_FENCE_TAG = re.compile(r"^[ \t]*+(?:```++|~~~++)[ \t]*+\{?\.?([\w+#.-]+)", re.M)
_FENCED = re.compile(r"^[ \t]*(`{3,}|~{3,}).*?(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)
_GENERIC_TAGS = frozenset({"text", "txt", "plain", "plaintext", "code", "none", "raw", "output"})
_EXTENSION = re.compile(r"\.(py|pyi|js|jsx|mjs|cjs|ts|tsx|mts|rs|c|h|cpp|cc|cxx|hpp|hh|hxx)\b"
                        r"(?![\w(])")
_STEM_CHARS = frozenset("./-_")

# (language, weight, patterns): a few strong cues each; weights make one hit of a telltale
# construct (`let mut`, `std::`, `#include`) outweigh several generic ones (`->`, `::`).
# Every pattern opens with one literal and checks the word boundary behind it, so the regex
# engine jumps from literal to literal instead of trying each position (~50x faster); the
# alternatives of one cue are separate patterns for the same reason. Runs that could trade
# characters with what follows them are possessive, so a hostile line costs one read per cue
# occurrence rather than one per way of splitting it.
_CUE_SOURCES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    # `def f(…) -> T:` with an optional comment: the `)` tried are those followed by `:`
    # before any other `)`, `:` or `{`, so each part of the line is read once.
    ("python", 3, (r"def(?<!\wdef)[ \t]++\w++[ \t]*+\(.*?\)[^):{\n]*+:[ \t]*+(?:#.*)?$",)),
    ("python", 3, (r"from(?<!\wfrom)[ \t]+[\w.]+[ \t]+import[ \t]",)),
    ("python", 2, (r"import(?<!\wimport)[ \t]+[\w.]+(?:[ \t]+as[ \t]+\w+)?[ \t]*$",)),
    ("python", 2, (r"self\.(?<!\wself\.)\w",)),
    ("python", 2, (r"class(?<!\wclass)[ \t]+\w+(?:\(.*\))?[ \t]*:[ \t]*$",)),
    ("python", 2, (r"elif\b[^\n;{}]*:[ \t]*$", r"except\b[^\n;{}]*:[ \t]*$",
                   r"else:[ \t]*$")),
    ("python", 1, (r"None\b", r"True\b", r"False\b")),
    ("rust", 3, (r"fn(?<!\wfn)[ \t]+\w+[ \t]*(?:<[^>\n]*>)?[ \t]*\(",)),
    ("rust", 3, (r"let(?<!\wlet)[ \t]+mut\b",)),
    ("rust", 3, (r"impl(?<!\wimpl)(?:<[^>\n]*>)?[ \t]+\w",)),
    ("rust", 2, (r"&self\b", r"&mut self\b", r"&'[a-z]\w*\b(?!')")),
    ("rust", 2, (r"println!\(", r"format!\(", r"vec!\[", r"panic!\(", r"assert_eq!\(")),
    ("rust", 2, (r"use(?<!\wuse)[ \t]+(?:std|crate|super)::",
                 r"pub(?<!\wpub)(?:\([\w:]+\))?[ \t]+(?:fn|struct|enum|mod|trait)\b")),
    ("rust", 1, (r"Option<", r"Result<", r"Vec<", r"Box<")),
    ("rust", 1, (r"match(?<!\wmatch)[ \t][^{;\n]*\{", r"\)[ \t]*->[ \t]*[\w&(]")),
    ("c", 3, (r"#[ \t]*include[ \t]*<\w+\.h>",)),
    ("c", 2, (r"printf[ \t]*\(", r"malloc[ \t]*\(", r"free[ \t]*\(", r"memcpy[ \t]*\(",
              r"strlen[ \t]*\(", r"sizeof[ \t]*\(")),
    ("c", 1, (r"NULL\b", r"typedef\b", r"->", r"struct[ \t]+\w+[ \t]*\*")),
    ("c", 1, (r"#[ \t]*(?:define|ifndef|ifdef|endif|include)\b",)),
    ("cpp", 3, (r"std::", r"template[ \t]*<", r"#[ \t]*include[ \t]*<[a-z_]+>")),
    ("cpp", 3, (r"public:", r"private:", r"protected:", r"nullptr\b", r"namespace[ \t]+\w+")),
    ("cpp", 2, (r"class[ \t]+\w++[^;{\n]*\{", r"cout\b", r"auto[ \t]+\w+[ \t]*=")),
    ("cpp", 2, (r"::(?<=\w::)~?\w+[ \t]*\(",)),
    ("javascript", 3, (r"function(?<!\wfunction)[ \t]*+\*?[ \t]*+\w*+[ \t]*+\(",
                       r"console\.\w+\(")),
    ("javascript", 2, (r"const[ \t]++[\w{}\[\],][\w{}\[\], ]*+[ \t]*+=",
                       r"let[ \t]++[\w{}\[\],][\w{}\[\], ]*+[ \t]*+=",
                       r"var[ \t]++[\w{}\[\],][\w{}\[\], ]*+[ \t]*+=", r"=>")),
    ("javascript", 2, (r"require\(", r"module\.exports\b",
                       r"export[ \t]+(?:default|const|function)")),
    ("javascript", 1, (r"===", r"!==", r"await\b", r"document\.", r"Promise\b", r"\.then\(")),
    ("typescript", 4, (r"interface(?<!\winterface)[ \t]+\w+(?:<[^>\n]*>)?[ \t]*(?:\{|extends)",
                       r"type(?<!\wtype)[ \t]+\w+(?:<[^>\n]*>)?[ \t]*=")),
    ("typescript", 3, (r":[ \t]*(?:string|number|boolean|void|any|unknown|never)\b",)),
    ("typescript", 2, (r"private[ \t]+\w+[ \t]*[:(]", r"public[ \t]+\w+[ \t]*[:(]",
                       r"readonly[ \t]+\w+[ \t]*[:(]", r"as[ \t]+const\b")),
)
_CUES = tuple((lang, weight, tuple(re.compile(p, re.M) for p in patterns))
              for lang, weight, patterns in _CUE_SOURCES)
del _CUE_SOURCES
_CUE_SAMPLE = 6000  # chars: plenty to tell languages apart, and bounded time on huge pastes
# Lines longer than this (minified code, data, a pasted paragraph) are left out of the sample:
# they say little about the language, and a cue tried at each of its occurrences on such a
# line would read the rest of the line each time.
_CUE_LINE = 400
_CUE_MIN = 3


def canonical(name: str | None) -> str | None:
    """The canonical language for a name, tag or extension (`rs` -> `rust`), else None."""
    if not name:
        return None
    return ALIASES.get(name.strip().lower().lstrip("."))


def line_comment(language: str | None, tag: str | None = None) -> str:
    """The line-comment marker for omission notes: by language, else by fence tag, else #."""
    return _LINE_COMMENT.get(language or (tag or "").lower(), "#")


def detect_language(text: str, explicit: str | None = None) -> tuple[str | None, str]:
    """(language, reason): explicit wins, then fence tags, file names, then syntax cues."""
    if explicit:
        lang = canonical(explicit)
        if lang:
            return lang, f"explicit language {explicit!r}"
    tags = [m.group(1) for m in _FENCE_TAG.finditer(text)]
    found = _vote(tags, text)
    if found:
        lang, tag = found
        return lang, f"code fence tag ```{tag}"
    specific = [t for t in tags if t.lower() not in _GENERIC_TAGS]
    if specific:  # the user named the language, one we do not split: trust them
        return None, f"unknown: code fence tag ```{specific[0]} is not a supported language"
    found = _vote(_file_extensions(text), text)
    if found:
        lang, ext = found
        return lang, f"file name with .{ext} mentioned"
    lang, scores = cue_scores(text)
    if lang is None:
        why = "no fence tag, file name or syntax cue" if not scores else \
            "syntax cues too weak (" + _fmt(scores) + ")"
        reason = f"unknown: {why}" + (f"; {explicit!r} is not supported" if explicit else "")
        return None, reason
    return lang, "syntax cues (" + _fmt(scores) + ")"


def _file_extensions(text: str) -> Iterator[str]:
    """Extensions of file names mentioned in prose (`see app.py`), not `self.ts` in code."""
    prose = _FENCED.sub("", text)
    line_start = line_end = -1
    line_is_code = False
    for m in _EXTENSION.finditer(prose):
        if m.start() > line_end:  # a new line: find its bounds and read it once
            line_start = prose.rfind("\n", 0, m.start()) + 1
            line_end = prose.find("\n", m.end())
            line_end = len(prose) if line_end < 0 else line_end
            line_is_code = is_code_line(prose[line_start:line_end])
        if not line_is_code and _has_stem(prose, max(line_start, m.start() - 80), m.start()):
            yield m.group(1)


def _has_stem(text: str, lo: int, hi: int) -> bool:
    """Whether text[lo:hi] ends in a file stem: path characters, not only dots."""
    k = hi
    while k > lo and (text[k - 1].isalnum() or text[k - 1] in _STEM_CHARS):
        k -= 1
        if text[k] != ".":
            return True
    return False


def cue_scores(text: str) -> tuple[str | None, dict[str, int]]:
    """The language the syntax cues point at (or None) and the per-language scores."""
    scores: Counter[str] = Counter()
    sample = text[:_CUE_SAMPLE]
    if len(sample) > _CUE_LINE:
        sample = "\n".join(line for line in sample.split("\n") if len(line) <= _CUE_LINE)
    for lang, weight, patterns in _CUES:
        hits = sum(len(p.findall(sample)) for p in patterns)
        if hits:
            scores[lang] += weight * min(hits, 3)  # a repeated cue is one cue, not a landslide
    # TypeScript is JavaScript plus types: JS cues count for it, and its own cues decide.
    if scores["typescript"]:
        scores["typescript"] += scores["javascript"]
    # C++ is mostly C: C cues count for it when a C++-only construct is present.
    if scores["cpp"]:
        scores["cpp"] += scores["c"] // 2
    scores = Counter({k: v for k, v in scores.items() if v})
    if not scores:
        return None, {}
    ranked = scores.most_common(2)
    best, top = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    if top < _CUE_MIN or top == runner_up:
        return None, dict(scores)
    return best, dict(scores)


def _vote(candidates: Iterable[str], text: str) -> tuple[str, str] | None:
    """The most frequent recognised tag or extension, and its raw spelling."""
    seen: Counter[str] = Counter()
    spelling: dict[str, str] = {}
    for raw in candidates:
        lang = canonical(raw)
        if lang:
            seen[lang] += 1
            spelling.setdefault(lang, raw)
    if not seen:
        return None
    lang = seen.most_common(1)[0][0]
    raw = spelling[lang]
    if raw.lower() == "h" and cue_scores(text)[0] == "cpp":  # .h is C unless plainly C++
        lang = "cpp"
    return lang, raw


def _fmt(scores: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(scores.items(), key=lambda kv: -kv[1]))
