"""Hostile input through each pipeline stage: no crash, invariants hold, time linear per KB."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cerebrum.languages import LANGUAGES
from pi_appliance.pipeline import OverBudget, PipelineConfig, detect_language, prepare
from pi_appliance.pipeline.chunk import chunk
from pi_appliance.pipeline.dedup import dedup
from pi_appliance.pipeline.extract import extract, mentions
from pi_appliance.pipeline.rank import rank, resolve_named, select
from pi_appliance.pipeline.scan import mask, scan
from pi_appliance.pipeline.segment import is_code_line, segment

CFG = PipelineConfig()
SPLITTERS = (*LANGUAGES, None)

# Shapes that sent a regex into backtracking or a loop into rescanning, as fn(n) -> ~n chars.
SHAPES: dict[str, Callable[[int], str]] = {
    "long word (minified bundle)": lambda n: "A" + "b" * n,
    "long word, then the task": lambda n: "A" + "b" * n + "\nRefactor this.",
    "long word in a fence": lambda n: "Refactor this.\n```js\n" + "a" * n + "\n```\n",
    "fence lines": lambda n: "```\n" * (n // 4),
    "fences on one line": lambda n: "```" * (n // 3),
    "tilde fence lines": lambda n: "~~~\n" * (n // 4),
    "backticks": lambda n: "`" * n,
    "inline code flood": lambda n: "`a" * (n // 2),
    "open parens": lambda n: "(" * n,
    "open braces": lambda n: "Fix it.\n```c\n" + "{" * n + "\n```",
    "nested brackets": lambda n: "[" * (n // 2) + "]" * (n // 2),
    "unterminated string": lambda n: '"' + "a" * n,
    "escaped quotes": lambda n: 'Fix it.\n```c\nx = "' + '\\"' * (n // 2) + "\n```",
    "unterminated comment": lambda n: "/*" + "a" * n,
    "raw string openers": lambda n: 'Fix it.\n```rust\n' + 'r#"' * (n // 3) + "\n```",
    "C++ raw string openers": lambda n: 'Fix it.\n```cpp\n' + 'R"(' * (n // 3) + "\n```",
    "regex literal classes": lambda n: "Fix it.\n```js\nx = /" + "[/]" * (n // 3) + "\n```",
    "slashes": lambda n: "/" * n,
    "includes": lambda n: "#include <a.h>\n" * (n // 15),
    "dotted name": lambda n: "Fix " + "a." * (n // 2),
    "snake name": lambda n: "Fix " + "a_" * (n // 2),
    "camel name": lambda n: "Fix " + "aB" * (n // 2),
    "TODO( unclosed": lambda n: "// TODO(" * (n // 8),
    "spaces then text": lambda n: "Fix it." + " " * n + "x",
    "blank lines": lambda n: "x = 1;\n" + "\n" * n + "y = 2;\n",
    "sentences": lambda n: "Fix it. " * (n // 8),
    "JS cue flood": lambda n: "const " + " " * n,
    "def cue flood": lambda n: "def a()" * (n // 7),
    "C header flood": lambda n: "Fix f.\n```c\n" + ("int a (" + ")" * 300 + "\n") * (n // 308),
    "deep namespaces": lambda n: "Fix a.\n```cpp\n" + "namespace a {\n" * (n // 28)
                                 + "}\n" * (n // 28) + "```",
    "deep Python": lambda n: "Fix f.\n```python\ndef f():\n    return " + "-" * n + "1\n```",
    "CRLF": lambda n: "Fix it.\r\n" + "a = 1\r\n" * (n // 7),
    "lone CR": lambda n: "Fix it.\n```python\n" + "a\r" * (n // 2) + "\n```",
    "NUL": lambda n: "Fix it.\n" + "\0" * n,
    "lone surrogates": lambda n: "Fix it.\n" + "\ud800" * n,
    "mixed scripts": lambda n: "Fix it.\n" + "日本語ab αβγ Ωé\u200b " * (n // 14),
    "short lines": lambda n: "a\n" * (n // 2),
}

# Milliseconds per KB that no linear stage comes near on this kind of machine, even loaded
# (the worst fixed case, `ast` over 100k one-letter statements, is ~6 ms/KB on a busy 2-core
# box), while the backtracking this file guards against costs seconds per KB at 200 KB.
MS_PER_KB = 20.0
# And from 50 KB to 200 KB the cost per KB may not grow like quadratic work does (x4): a
# milder rescan hides under the absolute bound at these sizes but not under this one.
GROWTH, SLACK_MS_PER_KB = 3.0, 2.0


def per_kb_ms(run: Callable[[], object], text: str, repeats: int = 2) -> float:
    """The best of a few runs of `run`, in milliseconds per KB of `text`."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best * 1000 / (len(text) / 1000)


@pytest.mark.parametrize("shape", SHAPES)
def test_prepare_takes_linear_time_on_hostile_shapes(shape: str) -> None:
    took = {}
    for size in (50_000, 200_000):
        text = SHAPES[shape](size)
        took[size] = per_kb_ms(lambda text=text: prepare(text, CFG, budget_tokens=None), text)
        assert took[size] < MS_PER_KB, f"{shape} at {len(text)} chars: {took[size]:.2f} ms/KB"
    assert took[200_000] < GROWTH * took[50_000] + SLACK_MS_PER_KB, (
        f"{shape}: {took[50_000]:.2f} ms/KB at 50 KB, {took[200_000]:.2f} at 200 KB")


@pytest.mark.parametrize("shape", SHAPES)
def test_each_stage_takes_linear_time_on_hostile_shapes(shape: str) -> None:
    text = SHAPES[shape](200_000)
    stages: dict[str, Callable[[], object]] = {
        "segment": lambda: segment(text),
        "detect_language": lambda: detect_language(text),
        "extract": lambda: extract(segment(text)),
        "mentions": lambda: mentions(text),
        "is_code_line": lambda: [is_code_line(line) for line in text.split("\n") if line.strip()],
    }
    for language in SPLITTERS:
        stages[f"chunk {language}"] = lambda language=language: chunk(text, language, CFG)
    for name, run in stages.items():
        took = per_kb_ms(run, text, repeats=1)
        if took >= MS_PER_KB:  # a loaded machine can stall one run: a second chance
            took = per_kb_ms(run, text)
        assert took < MS_PER_KB, f"{name} on {shape}: {took:.2f} ms/KB"


_PIECES = st.sampled_from([
    "A" + "b" * 3000, "```", "```py\n", "~~~", "`", "``", "(", ")", "{", "}", "[", "]",
    '"', "'", '\\"', "'''", '"""', "/*", "*/", "//", "/", "x = /", "[/]", 'r#"', '"#', 'R"(',
    ")\"", "`${", "#include <a.h>", "#define X \\", "a.b.c", "a::b", "a_b_c", "aBcD",
    "TODO(", "# TODO: fix", "FIXME", " " * 200, "\t", "\r\n", "\r", "\n", "\n\n", "\0",
    "\ud800", "\udfff", "日本語", "αβγ", "\u200b", "\u2028", "def f(x):", "class A:",
    "    return x", "fn main() {", "impl<T> A for B {", "namespace a {", "int f(int x) {",
    "const a = () => {", "function f() {", "template <typename T>", "Refactor this.",
    "Please fix `f`.", "Why does it fail?", "- item", "1. step", "-" * 300, "if x:",
])
HOSTILE = st.lists(st.one_of(_PIECES, st.text(max_size=40)), max_size=40).map("".join)
HYPOTHESIS = settings(max_examples=40, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@HYPOTHESIS
@given(HOSTILE, st.sampled_from([None, 50, 100_000]))
def test_prepare_never_raises_but_over_budget(text: str, budget: int | None) -> None:
    try:
        out = prepare(text, CFG, budget_tokens=budget)
    except OverBudget:
        assert budget is not None
        return
    assert out.mode in ("pipeline", "raw")
    assert out.messages[0]["content"] == text if out.mode == "raw" else out.instruction
    assert out.prediction is None or (out.edit and out.prediction.strip())


@HYPOTHESIS
@given(HOSTILE)
@example("```py\n```py\n")  # a fence body that repeats its own fence line
@example("  \n  \nhello there\n```\nx\n```")
def test_segments_cover_the_text_in_order(text: str) -> None:
    pos = 0
    for seg in segment(text):
        assert seg.text.strip()
        # A segment's text may also occur earlier (a fence body repeating its own fence line):
        # it is the occurrence, in order, that starts on its line (or whose first non-blank
        # line is its line, when it opens with whitespace-only lines).
        lead = len(seg.text) - len(seg.text.lstrip())
        found = text.find(seg.text, pos)
        while found >= 0 and seg.start_line not in (text.count("\n", 0, found),
                                                    text.count("\n", 0, found + lead)):
            found = text.find(seg.text, found + 1)
        assert found >= 0, seg
        pos = found + len(seg.text)


@HYPOTHESIS
@given(HOSTILE, st.sampled_from(SPLITTERS))
def test_mask_and_scan_keep_length_and_lines(text: str, language: str | None) -> None:
    masked = mask(text, language)
    assert len(masked) == len(text)
    assert [len(line) for line in masked.split("\n")] == [len(line) for line in text.split("\n")]
    lines = scan(text, language)
    assert len(lines.raw) == len(lines.masked) == len(lines.depth) == text.count("\n") + 1
    assert min(lines.depth, default=0) >= 0 and min(lines.paren, default=0) >= 0


@HYPOTHESIS
@given(HOSTILE, st.sampled_from(SPLITTERS))
def test_chunks_are_whole_lines_of_the_block(text: str, language: str | None) -> None:
    code = text * 3  # over the chunking threshold more often
    raw = code.split("\n")
    chunks = chunk(code, language, PipelineConfig(chunk_threshold=100))
    for c in chunks:
        assert 1 <= c.start <= c.end <= len(raw)
        assert c.text == "\n".join(raw[c.start - 1 : c.end])
    covered = {i for c in chunks for i in range(c.start, c.end + 1)}
    assert all(i + 1 in covered for i, line in enumerate(raw) if line.strip())


@HYPOTHESIS
@given(HOSTILE)
def test_language_extract_rank_and_select_take_anything(text: str) -> None:
    language, reason = detect_language(text)
    assert language in (*LANGUAGES, None) and reason
    assert all(isinstance(name, str) for name in mentions(text))
    instruction = extract(segment("Refactor this.\n" + text))
    assert instruction is not None
    chunks = chunk(text * 3, language, PipelineConfig(chunk_threshold=100))
    named = resolve_named(instruction, chunks)
    kept = dedup(chunks, CFG).chunks
    picks = select(rank(kept, instruction, named, CFG), named, CFG)
    assert {i for pick in picks for i in pick} <= {c.index for c in chunks}
