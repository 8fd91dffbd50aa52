"""An answer's code blocks: found (named or not, cut off or not), matched to files by the
fence's name or as the only file, and turned into unified diffs that `git apply` takes."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from repl import blocks
from repl.blocks import Block, NoBlock

ANSWER = """Here it is:

```python app.py
async def f():
    return 1
```

And the helper:

```py:src/util.py
def g(): pass
```

````
plain ``` inside
````

~~~js
let x
"""


def test_blocks_with_their_names_and_tags():
    assert blocks.code_blocks(ANSWER) == [
        Block("python", "app.py", "async def f():\n    return 1"),
        Block("py", "src/util.py", "def g(): pass"),
        Block(None, None, "plain ``` inside"),
        Block("js", None, "let x\n", closed=False)]
    assert blocks.code_blocks("```./lib/a.rs\nfn a() {}\n```") == [
        Block("rs", "lib/a.rs", "fn a() {}")]
    assert blocks.code_blocks("no code") == []


def test_matched_by_fence_name_else_the_only_attached_file():
    found = blocks.pairs(ANSWER, ["app.py", "src/util.py", "other.py"])
    assert [(n, b.text) for n, b in found] == [("app.py", "async def f():\n    return 1"),
                                               ("src/util.py", "def g(): pass")]
    # by base name when it names one attached file only
    assert blocks.pairs(ANSWER, ["lib/util.py"])[0][1].name == "src/util.py"
    one = "```python\nx = 2\n```\nusage:\n```\nx\n```"
    assert [(n, b.text) for n, b in blocks.pairs(one, ["main.py"])] == [("main.py", "x = 2")]
    assert blocks.pairs(one, [], "new.py")[0] == ("new.py", Block("python", None, "x = 2"))
    assert blocks.pairs(ANSWER, [], "src/util.py")[0][1].text == "def g(): pass"


@pytest.mark.parametrize(("answer", "files", "message"), [
    (None, ["a.py"], "no answer yet: ask something first"),
    ("no code here", ["a.py"], "the last answer has no code block"),
    ("```\nx\n```", [], "no file attached: name one (PATH) or :add it"),
    ("```\nx\n```", ["a.py", "b.py"], "the answer's code blocks name none of the attached "
                                      "files (a.py, b.py): name one (PATH)"),
])
def test_no_block_says_why(answer, files, message):
    with pytest.raises(NoBlock) as exc:
        blocks.pairs(answer, files)
    assert str(exc.value) == message


def test_new_text_keeps_the_files_last_newline_convention():
    block = Block(None, None, "a\nb")
    assert blocks.new_text("old\n", block) == "a\nb\n"
    assert blocks.new_text(None, block) == "a\nb\n"
    assert blocks.new_text("old", block) == "a\nb"


def test_unified_diff():
    assert blocks.unified("a\n", "a\n", "x.py") == ""
    assert blocks.unified("a\nb\n", "a\nc\n", "x.py") == (
        "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n")
    assert blocks.unified("a", "a\n", "x.py").endswith(
        "@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+a\n")
    assert blocks.unified(None, "new\n", "n.py") == (
        "diff --git a/n.py b/n.py\nnew file mode 100644\n--- /dev/null\n+++ b/n.py\n"
        "@@ -0,0 +1 @@\n+new\n")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_apply_takes_the_diffs(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    files = {"app.py": "def f():\n    return 1\n\n\ndef g():\n    return 2\n",
             "sub/tail.txt": "no newline", "sub/crlf.txt": "one\r\ntwo\r\n",
             "feed.py": "a = 1\n\x0c\nb = 2\u2028c\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(text.encode())
    new = {"app.py": "async def f():\n    return 1\n\n\ndef g():\n    return 2\n",
           "sub/tail.txt": "no newline, changed", "sub/crlf.txt": "one\r\n2\r\n",
           "feed.py": "a = 1\n\x0c\nb = 3\u2028c\n",
           "added.py": "x = 1\n"}
    patch = "".join(blocks.unified(files.get(n), text, n) for n, text in new.items())
    subprocess.run(["git", "apply", "--check", "-"], input=patch.encode(), cwd=tmp_path,
                   check=True)
    subprocess.run(["git", "apply", "-"], input=patch.encode(), cwd=tmp_path, check=True)
    for name, text in new.items():
        assert (tmp_path / name).read_bytes() == text.encode()
