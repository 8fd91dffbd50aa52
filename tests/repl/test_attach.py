"""Attaching files: the size limit, binary and missing files refused with one line, names
relative to the working directory, `@path` mentions, and the named fenced blocks the
orchestrator's pipeline reads as code of a language."""

from __future__ import annotations

from pathlib import Path

import pytest

from pi_appliance.pipeline.language import detect_language
from pi_appliance.pipeline.segment import segment
from repl import attach


def test_a_file_is_read_with_its_name_relative_to_the_working_directory(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("x = 1\n")
    found = attach.read(tmp_path, "src/../src/app.py")
    assert (found.name, found.path, found.text) == ("src/app.py", tmp_path / "src" / "app.py",
                                                    "x = 1\n")
    assert attach.read(tmp_path / "src", "../src/app.py").name == "app.py"
    outside = attach.read(tmp_path / "src", str(tmp_path / "src" / "app.py"))
    assert outside.name == "app.py"


@pytest.mark.parametrize(("data", "message"), [
    (b"\x00\x01ELF", "f.bin: a binary file (it holds NUL bytes); not attached"),
    (b"\xff\xfe caf\xe9", "f.bin: a binary file (not UTF-8 text); not attached"),
    (b"x" * (attach.LIMIT + 1), f"f.bin: {attach.LIMIT + 1} bytes, over the 256 KiB limit "
                                "for an attached file"),
])
def test_binary_and_big_files_are_refused_with_one_line(tmp_path, data, message):
    (tmp_path / "f.bin").write_bytes(data)
    with pytest.raises(attach.AttachError) as exc:
        attach.read(tmp_path, "f.bin")
    assert str(exc.value) == message
    assert attach.text_of("ok", b"x" * attach.LIMIT) == "x" * attach.LIMIT


def test_missing_files_and_directories_are_one_line(tmp_path):
    with pytest.raises(attach.AttachError, match=r"^nope\.py: no such file$"):
        attach.read(tmp_path, "nope.py")
    (tmp_path / "d").mkdir()
    with pytest.raises(attach.AttachError, match=r"^d: not a regular file$"):
        attach.read(tmp_path, "d")


def test_mentions_outside_fences_and_decorator_calls():
    prompt = ("convert @app.py and @src/util.js, not me@example or @property\n"
              "@app.route('/')\n"
              "```py\n@fenced.py\n```\n"
              "see @docs/README too, and @app.py again.")
    assert attach.mentions(prompt) == ["app.py", "src/util.js", "docs/README"]


def test_blocks_are_named_fences_the_pipeline_reads_as_code_of_a_language():
    files = [attach.Attached("app.py", Path("/x/app.py"), "def f():\n    return 1\n"),
             attach.Attached("util.rs", Path("/x/util.rs"), "fn g() {}"),
             attach.Attached("Makefile", Path("/x/Makefile"), "all:\n\t```\n")]
    content = attach.user_content("convert to async", files)
    assert content == ("convert to async\n\n```py app.py\ndef f():\n    return 1\n```\n\n"
                       "```rs util.rs\nfn g() {}\n```\n\n````text Makefile\nall:\n\t```\n````")
    segs = segment(content)
    assert [(s.kind, s.tag, s.text) for s in segs] == [
        ("prose", None, "convert to async"),
        ("code", "py", "def f():\n    return 1"),
        ("code", "rs", "fn g() {}"),
        ("code", "text", "all:\n\t```")]
    assert detect_language(attach.user_content("x", files[:1]))[0] == "python"
