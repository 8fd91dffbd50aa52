"""Language detection: explicit name, fence tags, file names, syntax cues, unknown."""

from __future__ import annotations

import pytest

from pi_appliance.pipeline.language import canonical, detect_language, line_comment

PY = "import os\n\ndef main(argv):\n    if not argv:\n        return None\n    return self.run()\n"
RS = "use std::fmt;\n\nfn main() {\n    let mut v = Vec::new();\n    v.push(1);\n}\n"
C = "#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hi\\n\");\n    return 0;\n}\n"
CPP = "#include <vector>\n\ntemplate <typename T>\nT sum(const std::vector<T>& v) {\n" \
      "    T acc{};\n    for (auto x : v) acc += x;\n    return acc;\n}\n"
JS = "const fs = require('fs');\n\nfunction load(path) {\n  return fs.readFileSync(path)\n" \
     "    .toString()\n    .split('\\n')\n    .map((line) => line.trim());\n}\n" \
     "console.log(load('a.txt'));\n"
TS = "interface User {\n  id: number;\n  name: string;\n}\n\nexport function greet(u: User): " \
     "string {\n  return `hi ${u.name}`;\n}\n"


@pytest.mark.parametrize("text, explicit, language, reason", [
    (PY, "rust", "rust", "explicit language 'rust'"),
    (PY, "C++", "cpp", "explicit language 'C++'"),
    (f"```rs\n{PY}```", None, "rust", "code fence tag ```rs"),
    (f"```python3\n{RS}```", None, "python", "code fence tag ```python3"),
    (f"```cpp\n{C}```", None, "cpp", "code fence tag ```cpp"),
    (f"```tsx\n{JS}```", None, "typescript", "code fence tag ```tsx"),
    (f"Look at main.rs:\n```\n{PY}```", None, "rust", "file name with .rs mentioned"),
    ("Fix lib.c please", None, "c", "file name with .c mentioned"),
    ("In util.hpp the template is wrong", None, "cpp", "file name with .hpp mentioned"),
    ("Explain index.ts", None, "typescript", "file name with .ts mentioned"),
    (f"Fix app.py\n{RS}", None, "python", "file name with .py mentioned"),
    (PY, None, "python", "syntax cues"),
    (RS, None, "rust", "syntax cues"),
    (C, None, "c", "syntax cues"),
    (CPP, None, "cpp", "syntax cues"),
    (JS, None, "javascript", "syntax cues"),
    (TS, None, "typescript", "syntax cues"),
    ("Please help me with my essay about birds.", None, None, "unknown: no fence tag"),
    ("y = None", None, None, "unknown: syntax cues too weak"),
    (f"```go\n{JS}```", None, None, "unknown: code fence tag ```go is not a supported"),
    (PY, "cobol", "python", "syntax cues"),
])
def test_detect_language(text, explicit, language, reason):
    found, why = detect_language(text, explicit)
    assert found == language
    assert why.startswith(reason)


def test_a_member_access_in_code_is_not_a_file_name():
    code = "    return {'ts': round(self.ts, 3)}\n" + PY
    assert detect_language(code) == ("python", detect_language(code)[1])
    assert "syntax cues" in detect_language(code)[1]


def test_a_dot_h_header_is_c_unless_the_code_is_cpp():
    assert detect_language(f"See util.h\n```\n{C}```")[0] == "c"
    assert detect_language(f"See util.h\n```\n{CPP}```")[0] == "cpp"


@pytest.mark.parametrize("name, language", [
    ("py", "python"), ("JS", "javascript"), ("node", "javascript"), (".rs", "rust"),
    ("c++", "cpp"), ("hpp", "cpp"), ("h", "c"), ("tsx", "typescript"), ("go", None), ("", None),
])
def test_canonical_names(name, language):
    assert canonical(name) == language


def test_comment_syntax_for_notes():
    assert [line_comment(x) for x in ("python", "rust", "c", None)] == ["#", "//", "//", "#"]
    assert [line_comment(None, tag) for tag in ("go", "SQL", "ruby", "brainfuck")] == [
        "//", "--", "#", "#"]
