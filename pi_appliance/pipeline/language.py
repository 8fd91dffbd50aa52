"""Language detection (pure): explicit name, fence tags, file names, then syntax cues."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from types import MappingProxyType

LANGUAGES = ("python", "javascript", "typescript", "rust", "c", "cpp")

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

_LINE_COMMENT = MappingProxyType({"python": "#"})

_FENCE_TAG = re.compile(r"^[ \t]*(?:```+|~~~+)[ \t]*\{?\.?([\w+#.-]+)", re.M)
_FILE_NAME = re.compile(r"(?<![\w/.-])[\w./-]*?\w\.(py|pyi|js|jsx|mjs|cjs|ts|tsx|mts|rs|c|h|"
                        r"cpp|cc|cxx|hpp|hh|hxx)\b(?![\w(])")

# (language, weight, pattern): a few strong cues each; weights make one hit of a telltale
# construct (`let mut`, `std::`, `#include`) outweigh several generic ones (`->`, `::`).
_CUES: tuple[tuple[str, int, re.Pattern[str]], ...] = tuple(
    (lang, weight, re.compile(pattern, re.M)) for lang, weight, pattern in (
        ("python", 3, r"^[ \t]*(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(.*\)[^:{]*:[ \t]*(?:#.*)?$"),
        ("python", 3, r"^[ \t]*from[ \t]+[\w.]+[ \t]+import[ \t]"),
        ("python", 2, r"^[ \t]*import[ \t]+[\w.]+(?:[ \t]+as[ \t]+\w+)?[ \t]*$"),
        ("python", 2, r"\bself\.\w+"),
        ("python", 2, r"^[ \t]*class[ \t]+\w+(?:\(.*\))?[ \t]*:[ \t]*$"),
        ("python", 2, r"^[ \t]*(?:elif\b.*|else|try|finally|except\b.*):[ \t]*$"),
        ("python", 1, r"\b(?:None|True|False)\b"),
        ("rust", 3, r"\bfn[ \t]+\w+[ \t]*(?:<[^>]*>)?[ \t]*\("),
        ("rust", 3, r"\blet[ \t]+mut\b"),
        ("rust", 3, r"^[ \t]*impl\b"),
        ("rust", 2, r"&(?:mut[ \t]+)?self\b|&'\w+|\bSelf\b"),
        ("rust", 2, r"\b(?:println|format|vec|panic|assert_eq|write)!\("),
        ("rust", 2, r"^[ \t]*(?:use[ \t]+(?:std|crate|super)::|pub[ \t]+(?:fn|struct|enum|mod)\b)"),
        ("rust", 1, r"\b(?:Option|Result|Vec|Box)<|\bmatch\b[^{;]*\{|\)[ \t]*->[ \t]*[\w&(]"),
        ("c", 3, r"^[ \t]*#[ \t]*include[ \t]*<\w+\.h>"),
        ("c", 2, r"\b(?:printf|fprintf|malloc|calloc|free|memcpy|strlen|sizeof)[ \t]*\("),
        ("c", 1, r"\b(?:NULL|typedef|struct[ \t]+\w+[ \t]*\*|->)"),
        ("c", 1, r"^[ \t]*#[ \t]*(?:define|ifndef|ifdef|endif|include)\b"),
        ("cpp", 3, r"\bstd::|\btemplate[ \t]*<|^[ \t]*#[ \t]*include[ \t]*<[a-z_]+>"),
        ("cpp", 3, r"^[ \t]*(?:public|private|protected):|\bnamespace[ \t]+\w+|\bnullptr\b"),
        ("cpp", 2, r"\bclass[ \t]+\w+[^;{]*\{|\w+::\w+[ \t]*\(|\bcout\b|\bauto[ \t]+\w+[ \t]*="),
        ("javascript", 3, r"\bfunction\b[ \t]*\*?[ \t]*\w*[ \t]*\(|\bconsole\.\w+\("),
        ("javascript", 2, r"\b(?:const|let|var)[ \t]+[\w{}\[\], ]+[ \t]*=|=>"),
        ("javascript", 2, r"\brequire\(|\bmodule\.exports\b"
                          r"|\bexport[ \t]+(?:default|const|function)"),
        ("javascript", 1, r"===|!==|\bawait\b|\bdocument\.|\bPromise\b|\.then\("),
        ("typescript", 4, r"^[ \t]*(?:export[ \t]+)?(?:interface|type)[ \t]+\w+(?:<[^>]*>)?"
                          r"[ \t]*(?:=|\{|extends)"),
        ("typescript", 3, r"[\w)][ \t]*:[ \t]*(?:string|number|boolean|void|any|unknown|never)\b"),
        ("typescript", 2, r"\b(?:private|public|readonly)[ \t]+\w+[ \t]*[:(]"
                          r"|\bas[ \t]+const\b|<\w+>\("),
    )
)
_CUE_MIN = 3


def canonical(name: str | None) -> str | None:
    """The canonical language for a name, tag or extension (`rs` -> `rust`), else None."""
    if not name:
        return None
    return ALIASES.get(name.strip().lower().lstrip("."))


def line_comment(language: str | None) -> str:
    """The line-comment marker used for omission notes in `language`."""
    return _LINE_COMMENT.get(language or "", "//" if language else "#")


def detect_language(text: str, explicit: str | None = None) -> tuple[str | None, str]:
    """(language, reason): explicit wins, then fence tags, file names, then syntax cues."""
    if explicit:
        lang = canonical(explicit)
        if lang:
            return lang, f"explicit language {explicit!r}"
    found = _vote((m.group(1) for m in _FENCE_TAG.finditer(text)), text)
    if found:
        lang, tag = found
        return lang, f"code fence tag ```{tag}"
    found = _vote((m.group(1) for m in _FILE_NAME.finditer(text)), text)
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


def cue_scores(text: str) -> tuple[str | None, dict[str, int]]:
    """The language the syntax cues point at (or None) and the per-language scores."""
    scores: Counter[str] = Counter()
    for lang, weight, pattern in _CUES:
        hits = len(pattern.findall(text))
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
