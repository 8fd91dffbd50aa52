"""Lexical scanning (pure): blank out comments and string contents, track nesting per line.

The masked text has the same length and line breaks as the source, so a brace, keyword or
identifier found in it is real code, at the same place, and never text inside a literal.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from types import MappingProxyType

# Every alternative opens with a known character (#, /, quotes), so the regex engine skips
# ahead with a character-set test instead of trying each alternative at each position.
# A Python string prefix (f, rb, …) is left in place: it is not an identifier (see below).
# Linear on hostile text: a literal's body is possessive (it has one reading anyway); a quote
# right after a backslash opens nothing (`(?<!\\")`: outside a literal that is never valid code,
# and it stops an unterminated `"\"\"\"…` from being re-read from each escaped quote); a raw
# string, like a block comment, runs to the end when unclosed instead of being re-read from
# each later opener.
_PY_STRING = (r"\"\"\"[\s\S]*?(?:\"\"\"|\Z)|'''[\s\S]*?(?:'''|\Z)"
              r"|\"(?<!\\\")(?:\\.|[^\"\\\n])*+\"|'(?<!\\')(?:\\.|[^'\\\n])*+'")
_C_STRING = r"\"(?<!\\\")(?:\\.|[^\"\\\n])*+\""
_C_CHAR = r"'(?<!\\')(?:\\.|[^'\\\n])*+'"
_BLOCK_COMMENT = r"/\*[\s\S]*?(?:\*/|\Z)"
_LINE_COMMENT = r"//[^\n]*"
_DIRECTIVE = r"\#(?:\\\n|[^\n])*"  # outside strings and comments, C's `#` is a directive
# A `/` right after an operator or opening bracket (one space allowed) starts a regex literal.
# One that never closes (a division after all) is skipped whole as plain code (group `code`):
# re-read from every `/` inside it, a line of `[/]` would cost its length squared.
_REGEX_START = r"/(?:(?<=[(,=:\[!&|?{};>]/)|(?<=[(,=:\[!&|?{};>] /))(?![/*])"
_REGEX_BODY = r"(?:\\.|\[(?:\\.|[^\]\\\n])*+\]|[^/\\\n\[])++"

_JAVASCRIPT = (rf"(?P<comment>{_LINE_COMMENT}|{_BLOCK_COMMENT})"
               rf"|(?P<string>{_C_STRING}|{_C_CHAR}|`(?<!\\`)(?:\\.|[^`\\])*+`"
               rf"|{_REGEX_START}{_REGEX_BODY}/[a-z]*)|(?P<code>{_REGEX_START}{_REGEX_BODY})")
_MASKS = {
    "python": rf"(?P<comment>\#[^\n]*)|(?P<string>{_PY_STRING})",
    "c": (rf"(?P<directive>{_DIRECTIVE})|(?P<comment>{_LINE_COMMENT}|{_BLOCK_COMMENT})"
          rf"|(?P<string>{_C_STRING}|{_C_CHAR})"),
    "cpp": (rf"(?P<directive>{_DIRECTIVE})|(?P<comment>{_LINE_COMMENT}|{_BLOCK_COMMENT})"
            rf"|(?P<string>R\"(?P<delim>[^()\\ \n]{{0,16}})\([\s\S]*?(?:\)(?P=delim)\"|\Z)"
            rf"|{_C_STRING}|{_C_CHAR})"),
    # Rust: `'a` is a lifetime, so only a one-character (or escaped) literal is a char.
    "rust": (rf"(?P<comment>{_LINE_COMMENT}|{_BLOCK_COMMENT})"
             r"|(?P<string>b?r(?P<hashes>\#*)\"[\s\S]*?(?:\"(?P=hashes)|\Z)"
             r"|b?\"(?<!\\\")(?:\\.|[^\"\\])*+\""
             r"|b?'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])')"),
    "javascript": _JAVASCRIPT,
    "typescript": _JAVASCRIPT,
}
_PATTERNS = MappingProxyType({lang: re.compile(p, re.M) for lang, p in _MASKS.items()})
del _MASKS

# No leading \b: it defeats the fast scan. The lookbehind after the first character skips
# starts inside a word, which would each re-read the word before a quote (`xxxx"`).
IDENTIFIER = re.compile(r"[A-Za-z_](?<![A-Za-z_][A-Za-z_])\w*+(?![\w\"'])")

# Reserved words only: contextual ones (get, set, type, match, string…) are names too often.
KEYWORDS = frozenset(keyword.kwlist) | frozenset((
    "as", "async", "await", "break", "catch", "char", "class", "const", "constexpr",
    "continue", "crate", "default", "delete", "do", "double", "dyn", "else", "enum",
    "explicit", "export", "extends", "extern", "false", "final", "float", "fn", "for",
    "friend", "function", "goto", "if", "impl", "implements", "import", "in", "inline",
    "instanceof", "int", "interface", "let", "long", "loop", "mod", "move", "mut", "namespace",
    "new", "noexcept", "null", "nullptr", "operator", "override", "private", "protected",
    "pub", "public", "readonly", "ref", "return", "self", "Self", "short", "signed", "sizeof",
    "static", "struct", "super", "switch", "template", "this", "throw", "trait", "true", "try",
    "typedef", "typename", "typeof", "union", "unsafe", "unsigned", "use", "using", "var",
    "virtual", "void", "volatile", "where", "while", "with", "yield", "bool", "auto",
    "register", "restrict", "undefined", "i8", "i16", "i32", "i64", "i128", "isize", "u8",
    "u16", "u32", "u64", "u128", "usize", "f32", "f64", "elif", "None", "True", "False", "def",
    "del", "global", "nonlocal", "pass", "raise", "assert", "lambda", "from", "is", "not",
    "and", "or", "except", "finally",
))


@dataclass(frozen=True)
class Lines:
    """A piece of code as lines: raw, masked, and brace/paren depth at the start of each."""

    raw: tuple[str, ...]
    masked: tuple[str, ...]
    depth: tuple[int, ...]  # `{` nesting at the start of the line
    paren: tuple[int, ...]  # `(` and `[` nesting at the start of the line
    end_depth: int


def mask(code: str, language: str | None) -> str:
    """`code` with comments blanked and string contents blanked; same length and lines."""
    pattern = _PATTERNS.get(language or "")
    if pattern is None:
        return code
    return pattern.sub(_blank, code)


def _blank(match: re.Match[str]) -> str:
    text = match.group()
    kind = match.lastgroup if match.lastgroup in ("comment", "directive", "code") else "string"
    if kind == "code":
        return text
    if kind == "comment":
        return _spaces(text)
    if kind == "directive":
        return "#" + _spaces(text[1:])
    quote = min((i for i in (text.find('"'), text.find("'"), text.find("`"), text.find("/"))
                 if i >= 0), default=0)
    if len(text) - quote < 2:
        return text
    return text[: quote + 1] + _spaces(text[quote + 1 : -1]) + text[-1]


def _spaces(text: str) -> str:
    if "\n" not in text:
        return " " * len(text)
    return "\n".join(" " * len(part) for part in text.split("\n"))


def scan(code: str, language: str | None) -> Lines:
    """Split `code` into lines with their masked text and nesting depths."""
    raw = code.split("\n")
    masked = mask(code, language).split("\n")
    depths, parens = [], []
    depth = paren = 0
    for line in masked:
        depths.append(depth)
        parens.append(paren)
        if "{" in line or "}" in line:
            # Clamped at zero: a pasted fragment may close more than it opened.
            depth = max(0, depth + line.count("{") - line.count("}"))
        if "(" in line or ")" in line or "[" in line or "]" in line:
            paren = max(0, paren + line.count("(") + line.count("[")
                        - line.count(")") - line.count("]"))
    return Lines(tuple(raw), tuple(masked), tuple(depths), tuple(parens), depth)


def identifiers(masked: str) -> list[str]:
    """Identifiers in masked code, keywords and one-letter names left out, in order."""
    return [w for w in IDENTIFIER.findall(masked) if len(w) > 1 and w not in KEYWORDS]

