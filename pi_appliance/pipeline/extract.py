"""Instruction extraction (pure): directives in prose and TODO/FIXME comments, and the names
they mention. Generous on purpose: a sentence wrongly taken for the instruction only moves to
the top of the prompt, while a missed one could send the prompt without its task.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from .segment import Segment

# The verbs that open a directive, by what the answer will be. An edit's answer repeats most
# of the code it was given (a refactor, a fix, added types), so the kept code can be sent as
# the prediction the backend drafts from; the others answer in prose or in new code.
_EDIT_VERBS = frozenset((
    "refactor", "rewrite", "convert", "add", "optimize", "optimise", "fix", "make", "change",
    "rename", "implement", "remove", "delete", "replace", "update", "simplify", "clean",
    "document", "port", "translate", "debug", "improve", "migrate", "extract", "split", "move",
    "use", "modify", "turn", "reduce", "speed", "handle", "support", "comment", "annotate",
    "parallelize", "vectorize", "memoize", "cache", "wrap", "inline", "unify", "deduplicate",
    "dedupe", "restructure", "reorganize", "modernize", "upgrade", "complete", "finish",
    "refine", "harden", "secure", "validate", "sanitize", "type", "reimplement", "redo",
    "adapt", "transform", "express", "switch", "format", "tidy", "shorten", "rework",
    "parametrize", "parameterize", "guard", "protect", "avoid", "ensure", "drop", "return",
    "throw", "raise", "log",
))
_ANSWER_VERBS = frozenset((
    "explain", "write", "review", "create", "generate", "check", "find", "tell", "show",
    "describe", "summarize", "summarise", "test", "profile", "benchmark", "typecheck", "lint",
    "compare", "analyze", "analyse", "identify", "spot", "locate", "trace", "walk", "help",
    "list", "suggest", "propose",
))
# Directives too, but they say nothing of the answer's kind ("Keep the names the same.").
_VERBS = _EDIT_VERBS | _ANSWER_VERBS | frozenset(("keep", "preserve"))
# "Add tests for …" and "implement unit tests …" write new code, whatever their verb says.
_NEW_CODE_VERBS = frozenset(("add", "implement"))
_TEST_WORDS = frozenset(("test", "tests", "unittest", "unittests", "testcase", "testcases",
                         "spec", "specs"))
_PREFIX = re.compile(r"^(?:(?:please|pls|plz|kindly|now|then|also|and|so|ok|okay|hey|hi|next"
                     r"|finally|first|lastly|second|third|just|can you|could you|would you"
                     r"|will you|can u|i want you to|i'd like you to|i would like you to"
                     r"|i need you to|help me|let's|lets|try to|go ahead and|task)\b[\s,:]*)+",
                     re.I)
_REQUEST = re.compile(r"\b(?:can|could|would|will) (?:you|u)\b|\bplease\b|\bi (?:want|need|would"
                      r" like|'d like) (?:you )?to\b|\bhelp me\b|\bhow (?:do|can|should|would|to)"
                      r"\b|\bwhy (?:does|is|do|did|are|am|doesn't|isn't)\b|\b(?:should|must|needs?"
                      r" to|has to|have to) (?:be )?\w+|\bmake sure\b|\b(?:don't|do not) "
                      r"(?:change|touch|use|remove|rename|break)\b", re.I)
# `(?<![ \t])`: a run of blanks is tried from its first blank only, not from each of them.
_SENTENCE = re.compile(r"(?<=[.!?])[ \t]+(?=[A-Z`\"'(\[])|(?<![ \t])[ \t]*+\n(?=[ \t]*[A-Z`\"'(\[])"
                       r"|\n[ \t]*\n|\n(?=[ \t]*(?:[-*+]|\d+[.)])[ \t])")
_BULLET = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]+")
_MARKER = re.compile(r"(?:#|//|/\*+|^\s*\*|--)[ \t]*(TODO|FIXME|XXX)\b(?:\([^)]*+\))?[:\s-]*(.*)")
_MENTIONS_TODO = re.compile(r"\b(?:todo|fixme|xxx)s?\b", re.I)
_PLEASE = re.compile(r"\b(?:please|pls|plz|kindly)[\s,]++([A-Za-z]+)", re.I)
_WORDS = re.compile(r"[A-Za-z]+")

_BACKTICK = re.compile(r"`([^`\n]+)`")
_QUALIFIED = re.compile(r"\b[A-Za-z_]\w*+(?:(?:\.|::|#)[A-Za-z_]\w*+)+")
_CALL = re.compile(r"\b([A-Za-z_]\w*)\(")
_SNAKE = re.compile(r"(?<![\w.])_*[A-Za-z][A-Za-z0-9]*(?:_+[A-Za-z0-9]+)+_*(?![\w(])"
                    r"|(?<![\w.])_+[A-Za-z]\w*")
_CAMEL = re.compile(r"\b[a-z]+[0-9]*(?:[A-Z][a-z0-9]*)+\b|\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b")
_BARE = re.compile(r"[A-Za-z_]\w*")
_NOT_NAMES = frozenset((
    "e.g", "i.e", "etc", "vs", "async/await", "TODO", "FIXME", "XXX", "JavaScript",
    "TypeScript", "GitHub", "PyPI", "FastAPI", "NumPy", "OpenAI", "iOS", "macOS",
))
_FILE_EXT = re.compile(r"\.(?:py|pyi|js|jsx|mjs|cjs|ts|tsx|rs|c|h|cpp|cc|cxx|hpp|hh|md|txt|json|"
                       r"toml|yaml|yml|cfg|ini|html|css|sh|go|java|rb)$")


@dataclass(frozen=True)
class Directive:
    """One directive: a prose sentence or a TODO/FIXME comment, and where it is."""

    text: str
    source: Literal["prose", "comment"]
    segment: int  # index into the segments
    start: int  # character span in that segment's text
    end: int
    line: int  # 0-based line of the directive within its segment


@dataclass(frozen=True)
class Instruction:
    """The task the user asks for: the directives' text, the directives, the names mentioned."""

    text: str
    directives: tuple[Directive, ...]
    mentions: tuple[str, ...]  # code-like names in the text, `::`/`#` written as `.`
    edit: bool = False  # the task changes the given code: the answer largely repeats it

    @property
    def comment_lines(self) -> tuple[tuple[int, int], ...]:
        """(segment, line) of each comment directive: the code the task sits in."""
        return tuple((d.segment, d.line) for d in self.directives if d.source == "comment")


def extract(segments: Sequence[Segment]) -> Instruction | None:
    """The instruction in the message: prose directives, else TODO/FIXME comments; or None."""
    prose = [d for i, s in enumerate(segments) if s.kind == "prose" for d in _prose(s.text, i)]
    comments = [d for i, s in enumerate(segments) if s.kind == "code"
                for d in _comments(s.text, i)]
    chosen = prose
    # A comment TODO is the task when nothing in prose is, or when the prose points at it.
    if not prose or any(_MENTIONS_TODO.search(d.text) for d in prose):
        chosen = prose + comments
    if not chosen:
        return None
    text = "\n".join(d.text for d in chosen)
    # "There's an off-by-one in `chunkArray` … Fix it.": when the directives name nothing,
    # the prose around them says what "it" is.
    names = mentions(text) or mentions("\n".join(s.text for s in segments if s.kind == "prose"))
    return Instruction(text, tuple(chosen), names, is_edit(chosen))


def is_directive(sentence: str) -> bool:
    """Whether a prose sentence asks for something (imperative, request, question, must)."""
    s = _BULLET.sub("", sentence.strip())
    if not s:
        return False
    if s.rstrip().endswith("?"):
        return True
    if any(word in _VERBS for word, _ in _openings(s)):
        return True
    return bool(_REQUEST.search(s))


def _openings(sentence: str) -> Iterator[tuple[str, str]]:
    """The word that opens the sentence, and the one that opens its second clause ("In db.py,
    rename …"), past polite openers, lowered; each with the text after it. A contraction's
    stem ("Don't") is no word."""
    for clause in (sentence, *sentence.split(",")[1:2]):
        rest = _PREFIX.sub("", clause.strip())
        first = _WORDS.match(rest)
        if first and rest[first.end():first.end() + 1] != "'":
            yield first.group().lower(), rest[first.end():]


def is_edit(directives: Sequence[Directive]) -> bool:
    """Whether the task changes the given code (refactor, fix, convert, add types, rename,
    port, …), so the answer largely repeats it, rather than explaining, reviewing, testing it
    or answering a question. The first directive that tells decides; a TODO/FIXME comment
    that does not tell asks for a change where it stands."""
    for d in directives:
        kind = _kind(d)
        if kind is not None:
            return kind == "edit"
    return False


def _kind(directive: Directive) -> Literal["edit", "answer"] | None:
    text = directive.text
    if directive.source == "comment":
        text = text.partition(":")[2]  # "TODO: retry …": the marker is no verb
    s = _BULLET.sub("", text.strip())
    verbs = [*_openings(s), *((m.group(1).lower(), s[m.end():]) for m in _PLEASE.finditer(s))]
    for word, rest in verbs:
        if word in _EDIT_VERBS:
            writes_tests = word in _NEW_CODE_VERBS and any(
                w.lower() in _TEST_WORDS for w in _WORDS.findall(rest[:60])[:4])
            return "answer" if writes_tests else "edit"
        if word in _ANSWER_VERBS:
            return "answer"
    if s.endswith("?"):
        return "answer"  # a question wants an answer in prose: "How does tick pick a task?"
    return "edit" if directive.source == "comment" else None


def _prose(text: str, segment: int) -> list[Directive]:
    out: list[Directive] = []
    start = counted = line = 0  # line: newlines before `counted`, counted as we go
    for sep in [*_SENTENCE.finditer(text), None]:
        end = sep.start() if sep else len(text)
        piece = text[start:end]
        stripped = piece.strip()
        if stripped and is_directive(stripped):
            lead = len(piece) - len(piece.lstrip())
            line += text.count("\n", counted, start + lead)
            counted = start + lead
            out.append(Directive(" ".join(stripped.split()), "prose", segment, start + lead,
                                 start + lead + len(stripped), line))
        start = sep.end() if sep else end
    return out


def _comments(code: str, segment: int) -> list[Directive]:
    if "TODO" not in code and "FIXME" not in code and "XXX" not in code:
        return []  # the common case, decided without splitting lines
    lines = code.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    out: list[Directive] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = ("TODO" in line or "FIXME" in line or "XXX" in line) and _MARKER.search(line)
        if not m:
            i += 1
            continue
        body = m.group(2).split("*/")[0].strip()
        parts = [f"{m.group(1)}: {body}" if body else m.group(1)]
        j = i + 1
        # A lower-case comment line right after an unfinished TODO continues it.
        while j < len(lines) and not parts[-1].endswith((".", "!", "?")):
            more = re.match(r"\s*(?:#|//|\*)\s*([a-z(].*)", lines[j])
            if not more or _MARKER.search(lines[j]):
                break
            parts.append(more.group(1).split("*/")[0].strip())
            j += 1
        out.append(Directive(" ".join(parts), "comment", segment, starts[i] + m.start(),
                             starts[j - 1] + len(lines[j - 1]), i))
        i = j
    return out


def mentions(text: str) -> tuple[str, ...]:
    """Code-like names in an instruction: `quoted`, a.b, A::b, call(), snake_case, camelCase."""
    found: list[str] = []
    for m in _BACKTICK.finditer(text):
        inner = m.group(1)
        qualified = [q.group() for q in _QUALIFIED.finditer(inner)]
        found.extend(qualified or _BARE.findall(inner)[:1])
    found.extend(q.group() for q in _QUALIFIED.finditer(text))
    found.extend(_CALL.findall(text))
    found.extend(_SNAKE.findall(text))
    found.extend(_CAMEL.findall(text))
    out: dict[str, None] = {}
    for name in found:
        name = name.replace("::", ".").replace("#", ".").strip(".")
        if not name or name in _NOT_NAMES or _FILE_EXT.search(name):
            continue
        out[name] = None
    # `OrderService.applyDiscount` names the method, not the whole OrderService class.
    parts = {p for name in out if "." in name for p in name.split(".")}
    return tuple(name for name in out if name not in parts)
