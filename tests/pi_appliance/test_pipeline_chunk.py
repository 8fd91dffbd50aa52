"""Chunking: syntax boundaries per language, whole lines only, oversized splits, windows."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import pytest

from pi_appliance.pipeline.chunk import Chunk, chunk
from pi_appliance.pipeline.config import PipelineConfig
from pi_appliance.pipeline.segment import segment

CORPUS = Path(__file__).parents[1] / "data" / "corpus"
SMALL = PipelineConfig(chunk_threshold=10)

PYTHON = textwrap.dedent('''\
    import time
    import requests

    BASE = "https://x"


    class Client:
        """A client."""

        retries = 3

        def get(self, path):
            return requests.get(BASE + path)

        @staticmethod
        def wait():
            time.sleep(1)


    # the one the task is about
    def fetch_user(uid):
        return Client().get(f"/users/{uid}")
    ''')


def names(chunks: list[Chunk]) -> list[tuple[str, str | None, str]]:
    return [(c.kind, c.name, c.role) for c in chunks]


def test_python_splits_at_functions_classes_and_methods():
    chunks = chunk(PYTHON, "python", SMALL)
    assert names(chunks) == [
        ("imports", None, "whole"), ("statements", None, "whole"),
        ("class", "Client", "header"), ("method", "Client.get", "whole"),
        ("method", "Client.wait", "whole"), ("function", "fetch_user", "whole")]
    header, get, wait, fetch = chunks[2:]
    assert header.text.endswith("retries = 3")
    assert get.parent == "Client" and get.needs == (header.index,)
    assert wait.text.lstrip().startswith("@staticmethod")  # decorators stay with their def
    assert fetch.text.startswith("# the one")  # a comment goes with the code below it
    assert fetch.defines == {"fetch_user"} and {"Client", "get"} <= fetch.uses
    assert chunks[0].defines == {"time", "requests"}
    assert (fetch.start, fetch.end) == (20, 22)


def test_code_under_the_threshold_is_one_chunk():
    chunks = chunk(PYTHON, "python", PipelineConfig())
    assert names(chunks) == [("block", None, "whole")]
    assert chunks[0].text == PYTHON.rstrip("\n")


RUST = textwrap.dedent('''\
    use std::collections::HashMap;

    #[derive(Debug)]
    pub struct Item { qty: u32 }

    impl Inventory {
        pub fn new() -> Self {
            let c = '{';
            Inventory { items: HashMap::new() }
        }

        /// Take stock out.
        pub fn remove_item<'a>(&mut self, sku: &'a str) -> u32 {
            let s = r#"}}"#; // }
            0
        }
    }

    fn main() {}
    ''')


def test_rust_items_and_impl_methods_despite_braces_in_literals():
    chunks = chunk(RUST, "rust", SMALL)
    assert names(chunks) == [
        ("imports", None, "whole"), ("struct", "Item", "whole"), ("impl", "Inventory", "header"),
        ("method", "Inventory.new", "whole"), ("method", "Inventory.remove_item", "whole"),
        ("impl", "Inventory", "footer"), ("function", "main", "whole")]
    assert chunks[1].text.startswith("#[derive(Debug)]")
    assert chunks[4].text.lstrip().startswith("/// Take stock out.")
    assert set(chunks[4].needs) == {chunks[2].index, chunks[5].index}


def test_javascript_class_methods_functions_and_arrow_functions():
    code = textwrap.dedent('''\
        import { api } from './api'
        const BASE = '/v1'
        export class Dashboard {
          count = 0;
          async load(id) {
            return api.get(`${BASE}/d/${id}`).then(r => /[}]/.test(r));
          }
          render() { return '}'; }
        }
        function loadDashboard(id) {
          return fetch(BASE + id)
        }
        const helper = (a, b) => {
          return a + b
        }
        ''')
    assert names(chunk(code, "javascript", SMALL)) == [
        ("imports", None, "whole"), ("declarations", "BASE", "whole"),
        ("class", "Dashboard", "header"), ("method", "Dashboard.load", "whole"),
        ("method", "Dashboard.render", "whole"), ("class", "Dashboard", "footer"),
        ("function", "loadDashboard", "whole"), ("function", "helper", "whole")]


def test_c_and_cpp_functions_structs_namespaces_and_out_of_class_methods():
    c = "#include <stdio.h>\n#define MAX 4\nstruct p {\n  int x;\n};\n" \
        "static int *get(struct p *q)\n{\n  return &q->x;\n}\n"
    assert names(chunk(c, "c", SMALL)) == [
        ("imports", None, "whole"), ("macro", "MAX", "whole"), ("struct", "p", "whole"),
        ("function", "get", "whole")]
    cpp = "namespace rt {\nclass S {\npublic:\n  int a() { return 1; }\n  int b() const {\n" \
          "    return 2;\n  }\n};\nint S::tick(int n) {\n  return n;\n}\n}  // namespace rt\n"
    assert names(chunk(cpp, "cpp", SMALL)) == [
        ("namespace", "rt", "header"), ("class", "S", "header"), ("method", "S.a", "whole"),
        ("method", "S.b", "whole"), ("class", "S", "footer"), ("function", "S.tick", "whole"),
        ("namespace", "rt", "footer")]


def test_an_oversized_function_is_split_at_statement_starts():
    body = "".join(f"    total += compute_{i}(row, weights[{i}])\n" for i in range(120))
    code = f"def build(rows, weights):\n    total = 0\n{body}    return total\n"
    chunks = chunk(code, "python", SMALL)
    assert len(chunks) > 1
    assert {c.role for c in chunks} == {"part"} and {c.name for c in chunks} == {"build"}
    assert [c.part for c in chunks] == list(range(1, len(chunks) + 1))
    assert all(len(c.text) <= SMALL.max_chunk_chars for c in chunks)
    assert all(c.needs == (chunks[0].index,) for c in chunks[1:])
    assert "\n".join(c.text for c in chunks) == code.rstrip("\n")


def test_an_oversized_brace_function_is_split_inside_its_body():
    body = "".join(f"    total += compute_{i}(row, w[{i}]);\n" for i in range(120))
    code = f"int build(int *row, int *w)\n{{\n    int total = 0;\n{body}    return total;\n}}\n"
    chunks = chunk(code, "c", SMALL)
    assert len(chunks) > 1 and {c.name for c in chunks} == {"build"}
    assert "\n".join(c.text for c in chunks) == code.rstrip("\n")


def test_unknown_languages_get_overlapping_windows_of_whole_lines():
    code = "".join(f"line {i} of some unknown language, with words\n" for i in range(100))
    chunks = chunk(code, None, PipelineConfig())
    assert {c.kind for c in chunks} == {"window"}
    lines = code.split("\n")
    for c in chunks:
        assert len(c.text) <= 1000
        assert c.text == "\n".join(lines[c.start - 1 : c.end])
    for a, b in itertools.pairwise(chunks):
        overlap = "\n".join(lines[b.start - 1 : a.end])
        assert b.start <= a.end and len(overlap) >= 150 - 48
    assert chunks[-1].end == 100


def test_python_that_does_not_parse_is_split_by_indentation():
    code = PYTHON.replace("def wait():", "def wait(:")
    chunks = chunk(code, "python", SMALL)
    assert ("function", "fetch_user", "whole") in names(chunks)
    assert ("class", "Client", "whole") in names(chunks)


@pytest.mark.parametrize("path", sorted(p.name for p in CORPUS.iterdir() if p.suffix != ".toml"))
def test_chunks_never_cut_a_line(path):
    text = (CORPUS / path).read_text()
    from pi_appliance.pipeline.language import canonical, detect_language

    language = detect_language(text)[0]
    for i, seg in enumerate(segment(text)):
        if seg.kind != "code":
            continue
        lines = seg.text.split("\n")
        chunks = chunk(seg.text, canonical(seg.tag) or language, PipelineConfig(), block=i)
        covered: set[int] = set()
        for c in chunks:
            assert c.text == "\n".join(lines[c.start - 1 : c.end])  # whole lines, in place
            covered |= set(range(c.start, c.end + 1))
        assert covered >= {n + 1 for n, line in enumerate(lines) if line.strip()}


@pytest.mark.parametrize("path", sorted(p.name for p in CORPUS.iterdir() if p.suffix != ".toml"))
def test_fragments_in_any_language_chunk_whole_lines_and_quickly(path):
    """Pasted fragments: cut anywhere, read as any language (a wrong guess must not hang)."""
    import random
    import time

    from cerebrum.languages import LANGUAGES

    text = (CORPUS / path).read_text()
    rnd = random.Random(path)
    for _ in range(4):
        start = rnd.randrange(len(text))
        piece = text[start : rnd.randrange(start, len(text) + 1)]
        lines = piece.split("\n")
        for language in (*LANGUAGES, None):
            began = time.perf_counter()
            chunks = chunk(piece, language, PipelineConfig(chunk_threshold=0))
            assert time.perf_counter() - began < 2.0  # a hang guard, not a benchmark
            for c in chunks:
                assert c.text == "\n".join(lines[c.start - 1 : c.end])
