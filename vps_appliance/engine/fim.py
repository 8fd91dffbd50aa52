"""Fill-in-the-middle prompts (pure): the model's FIM token ids, the layout, the budget.

The prompt follows llama-server's `format_prompt_infill` (repository-level form when the
vocabulary has `<|repo_name|>`/`<|file_sep|>`):

    [BOS] [REP]myproject\\n [SEP]file\\ntext ... [SEP]filename\\n PRE prefix+prompt SUF suffix MID

"psm" keeps that order; "spm" puts SUF suffix before PRE prefix. The order matters for the KV
cache: an editor types at the cursor, i.e. at the end of prefix+prompt, and every token after
the first changed one is evaluated again. With "psm" that is the whole suffix, so the suffix is
bounded by `suffix_tokens` (a model setting): one typed line then costs that window plus the
line, whatever the file's length.

llama-cpp-python's own `suffix=` path is not used: in 0.3.x `_create_completion` hard-codes
token id 0 as the prefix, suffix and middle markers (its `token_prefix()` calls are commented
out with "TODO: Fix"), which is `!` in Qwen's vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import llama_cpp

Layout = Literal["psm", "spm"]
Tokenize = Callable[[str], list[int]]

REPO_NAME = "myproject"  # what llama-server sends; the model only needs a stable header
CURRENT_FILE = "filename"
SNIPPET_SEPARATOR = "\n\n--- snippet ---\n\n"  # llama-server's, for vocabularies without SEP


@dataclass(frozen=True)
class FimTokens:
    """The vocabulary's FIM markers; rep/sep/pad are -1 when the model has none."""

    pre: int
    suf: int
    mid: int
    rep: int
    sep: int
    pad: int
    bos: int  # -1 unless the vocabulary adds BOS

    @property
    def stops(self) -> frozenset[int]:
        """Tokens that end a middle: any FIM marker or file separator."""
        return frozenset(t for t in (self.pre, self.suf, self.mid, self.rep, self.sep, self.pad)
                         if t >= 0)


def fim_tokens(vocab: Any) -> FimTokens | None:
    """The model's FIM markers, or None when it lacks prefix, suffix or middle."""
    ids = [f(vocab) for f in (llama_cpp.llama_vocab_fim_pre, llama_cpp.llama_vocab_fim_suf,
                              llama_cpp.llama_vocab_fim_mid, llama_cpp.llama_vocab_fim_rep,
                              llama_cpp.llama_vocab_fim_sep, llama_cpp.llama_vocab_fim_pad)]
    if min(ids[:3]) < 0:
        return None
    bos = llama_cpp.llama_vocab_bos(vocab) if llama_cpp.llama_vocab_get_add_bos(vocab) else -1
    return FimTokens(*ids, bos=bos)


def missing_markers(vocab: Any) -> list[str]:
    """Which of prefix/suffix/middle the vocabulary lacks (for the 501's message)."""
    names = (("prefix", llama_cpp.llama_vocab_fim_pre), ("suffix", llama_cpp.llama_vocab_fim_suf),
             ("middle", llama_cpp.llama_vocab_fim_mid))
    return [name for name, f in names if f(vocab) < 0]


@dataclass(frozen=True)
class Cut:
    """What the budget left out."""

    prefix_lines: int = 0
    suffix_lines: int = 0
    extra_chunks: int = 0

    @property
    def any(self) -> bool:
        """Whether anything was cut."""
        return bool(self.prefix_lines or self.suffix_lines or self.extra_chunks)

    def as_dict(self) -> dict[str, int]:
        """For the response (counts only)."""
        return {"prefix_lines": self.prefix_lines, "suffix_lines": self.suffix_lines,
                "extra_chunks": self.extra_chunks}


@dataclass(frozen=True)
class FimPrompt:
    """The prompt's tokens and what was cut to fit."""

    tokens: list[int]
    cut: Cut


def _keep_lines(tokenize: Tokenize, text: str, budget: int, tail: bool) -> tuple[list[int], int]:
    """Tokens of the last (tail) or first lines of `text` within `budget`; lines dropped.

    Whole lines go first; a single line over the budget is cut by tokens, as llama-server does.
    """
    tokens = tokenize(text)
    if len(tokens) <= budget:
        return tokens, 0
    if budget <= 0:
        return [], text.count("\n") + (not text.endswith("\n"))
    lines = text.splitlines(keepends=True)
    counts = [len(tokenize(line)) for line in lines]
    order = range(len(lines) - 1, -1, -1) if tail else range(len(lines))
    kept, used = 0, 0
    for i in order:
        if used + counts[i] > budget:
            break
        used += counts[i]
        kept += 1
    while kept > 0:
        part = "".join(lines[len(lines) - kept:] if tail else lines[:kept])
        tokens = tokenize(part)
        if len(tokens) <= budget:
            return tokens, len(lines) - kept
        kept -= 1
    edge = tokenize(lines[-1] if tail else lines[0])
    return (edge[-budget:] if tail else edge[:budget]), len(lines) - 1


def _extra_tokens(tokenize: Tokenize, fim: FimTokens,
                  extra: Sequence[tuple[str, str]]) -> tuple[list[int], list[list[int]], list[int]]:
    """Header, one token list per chunk, and the current file's separator."""
    head = [fim.rep, *tokenize(REPO_NAME + "\n")] if fim.rep >= 0 else []
    chunks = []
    for filename, text in extra:
        sep = ([fim.sep, *tokenize(filename + "\n")] if fim.sep >= 0
               else tokenize(SNIPPET_SEPARATOR))
        chunks.append(sep + tokenize(text))
    tail = [fim.sep, *tokenize(CURRENT_FILE + "\n")] if fim.sep >= 0 else []
    return head, chunks, tail


def build(tokenize: Tokenize, fim: FimTokens, *, prefix: str, suffix: str, prompt: str,
          extra: Sequence[tuple[str, str]], room: int, layout: Layout,
          suffix_tokens: int) -> FimPrompt | None:
    """The FIM prompt within `room` tokens (n_ctx minus the prediction); None if even the
    markers and `prompt` do not fit.

    The suffix keeps its first lines (at most `suffix_tokens`, and a quarter of the room), the
    prefix its last lines (at most three quarters), and the extra chunks fill what is left,
    the most recent (last) ones first, whole chunks only.
    """
    head, chunks, tail = _extra_tokens(tokenize, fim, extra)
    typed = tokenize(prompt) if prompt else []
    fixed = len(head) + len(tail) + len(typed) + 3 + (fim.bos >= 0)
    if fixed > room:
        return None
    cap = room // 4 if suffix_tokens <= 0 else min(suffix_tokens, room // 4)
    suf, suffix_cut = _keep_lines(tokenize, suffix, min(cap, room - fixed), tail=False)
    pre_budget = min(room * 3 // 4, room - fixed - len(suf))
    pre, prefix_cut = _keep_lines(tokenize, prefix, pre_budget, tail=True)
    left = room - fixed - len(suf) - len(pre)
    kept: list[list[int]] = []
    for chunk in reversed(chunks):
        if len(chunk) > left:
            break
        kept.insert(0, chunk)
        left -= len(chunk)
    pre_part = [fim.pre, *pre, *typed]
    suf_part = [fim.suf, *suf]
    body = pre_part + suf_part if layout == "psm" else suf_part + pre_part
    tokens = ([fim.bos] if fim.bos >= 0 else []) + head + [t for c in kept for t in c] + tail
    tokens += [*body, fim.mid]
    return FimPrompt(tokens, Cut(prefix_cut, suffix_cut, len(chunks) - len(kept)))


@dataclass
class IndentGuard:
    """llama-server's `n_indent`: stop before a new line indented less than `n_indent`.

    Text after a newline is held back until the line shows its first non-blank character.
    """

    n_indent: int
    _held: str = ""
    _at_line_start: bool = False
    stopped: bool = False

    def feed(self, text: str) -> str:
        """Add `text`; return what may be emitted now."""
        if self.n_indent <= 0 or self.stopped:
            return "" if self.stopped else text
        out = []
        for ch in text:
            if self._at_line_start:
                if ch in " \t":
                    self._held += ch
                    continue
                if ch != "\n" and len(self._held) < self.n_indent:
                    self.stopped = True  # keep the blanks, as llama-server does
                    out.append(self._held)
                    self._held = ""
                    return "".join(out)
                out.append(self._held)
                self._held = ""
                self._at_line_start = ch == "\n"
                out.append(ch)
                continue
            out.append(ch)
            if ch == "\n":
                self._at_line_start = True
        return "".join(out)

    def flush(self) -> str:
        """What was held at the end of generation."""
        out, self._held = self._held, ""
        return out
