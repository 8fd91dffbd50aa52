"""Segmentation: fenced blocks, and prose told from bare code line by line."""

from __future__ import annotations

import pytest

from pi_appliance.pipeline.segment import fences, is_code_line, segment


def kinds(text: str) -> list[tuple[str, str]]:
    return [(s.kind, s.text.split("\n")[0]) for s in segment(text)]


def test_fenced_blocks_with_tags_lines_and_an_unclosed_fence():
    text = "Fix it.\n\n```rust title=\"a.rs\"\nfn a() {}\n```\nThanks\n~~~\nx = 1\n"
    segs = segment(text)
    assert [(s.kind, s.tag, s.start_line) for s in segs] == [
        ("prose", None, 0), ("code", "rust", 3), ("prose", None, 5), ("code", None, 7)]
    assert segs[1].text == "fn a() {}" and segs[1].fenced
    assert list(fences("a ```not a fence``` b")) == []


@pytest.mark.parametrize("text, expected", [
    ("why does this panic?\nfn main() {\n    let v = vec![1];\n}",
     [("prose", "why does this panic?"), ("code", "fn main() {")]),
    ("#include <stdio.h>\nint main(void) {\n    return 0;\n}\nCan you explain the return value?",
     [("code", "#include <stdio.h>"), ("prose", "Can you explain the return value?")]),
    ('"""Module docstring."""\n\nimport os\n\n\ndef f(x):\n    return x\nnow make f faster',
     [("code", '"""Module docstring."""'), ("prose", "now make f faster")]),
    ("def f():\n    '''\nA docstring line that reads like prose.\n    '''\n    return 1\n",
     [("code", "def f():")]),
])
def test_bare_code_and_prose(text, expected):
    assert kinds(text) == expected


@pytest.mark.parametrize("line, code", [
    ("def read_line(line: str) -> Reading | None:", True),
    ("import requests", True),
    ("    return x", True),
    ("}", True),
    ("x = compute(a, b)", True),
    ("// TODO: handle errors", True),
    ("Refactor fetch_user() to async.", False),
    ("If you can, explain why this is slow:", False),
    ("Here is the code:", False),
    ("  - a markdown list item", False),
])
def test_is_code_line(line, code):
    assert is_code_line(line) is code
