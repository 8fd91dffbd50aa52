"""bench/quality.py's pure parts and its task set: loading, the answer's code, the checks."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.quality import (
    MAX_TOKENS,
    N_CTX,
    Task,
    check_answer,
    code_blocks,
    definition_text,
    edited_program,
    find_definition,
    load_tasks,
    run_program,
    summarize,
)
from pi_appliance.pipeline import PipelineConfig, estimate_tokens, prepare

TASKS = load_tasks()


def task(language: str, code: str, target: str, tests: str, answer_name: str = "") -> Task:
    return Task("t", language, target, answer_name or target, "Fix it.", "before", code, "",
                tests)


def test_the_task_set_is_large_and_mixed():
    counts = Counter("c/c++" if t.language in ("c", "cpp") else t.language for t in TASKS)
    assert len(TASKS) >= 15
    assert counts["python"] >= 5 and counts["javascript"] >= 3 and counts["c/c++"] >= 3


@pytest.mark.parametrize("t", TASKS, ids=lambda t: t.name)
def test_each_task_is_reduced_by_the_pipeline_and_fits_raw(t: Task):
    assert find_definition(t.code, t.target, t.language) is not None
    assert t.instruction in t.prompt and t.code in t.prompt
    assert len(t.code) >= 2500
    budget = N_CTX - MAX_TOKENS - 64
    assert estimate_tokens(t.prompt) <= budget
    assert prepare(t.prompt, PipelineConfig(), budget_tokens=budget).mode == "pipeline"


@pytest.mark.parametrize("t", TASKS, ids=lambda t: t.name)
def test_each_check_passes_its_reference_and_fails_the_original(t: Task):
    answer = f"Here is the fixed function:\n\n```{t.language}\n{t.reference}```\n\nDone."
    good = check_answer(t, answer)
    assert good.passed, good.detail
    unchanged = check_answer(t, f"```{t.language}\n{t.code}```")
    assert not unchanged.passed


def test_code_blocks_closed_unclosed_and_none():
    answer = "Sure:\n```python\na = 1\n```\ntext\n~~~\nb = 2\n~~~\n```js\nc = 3\n"
    assert code_blocks(answer) == ["a = 1\n", "b = 2\n", "c = 3\n"]
    assert code_blocks("def f():\n    return 1\n") == ["def f():\n    return 1\n"]
    assert code_blocks("````md\n```py\nx\n```\n````") == ["```py\nx\n```\n"]


def test_python_definitions_alone_in_a_class_or_in_broken_code():
    module = "import os\n\n@cached\ndef f(x):\n    return x\n\n\ndef g():\n    pass\n"
    start, end = find_definition(module, "f", "python")
    assert module[start:end] == "@cached\ndef f(x):\n    return x\n"
    method = "    def total(self,\n              x):\n        return 1\n\n    def other(self):\n"
    assert definition_text(method, "Cart.total", "python") == \
        "def total(self,\n          x):\n    return 1\n"
    prose = "Here it is\ndef f(a):\n    s = '''\nx'''\n    return a\nThat's all.\n"
    assert definition_text(prose, "f", "python") == "def f(a):\n    s = '''\nx'''\n    return a\n"
    assert definition_text("def other():\n    pass\n", "f", "python") is None


def test_brace_definitions_in_their_forms():
    js = ("// chunkArray(x) is called below\nconst chunkArray = (items, n) => {\n"
          "  return items.map((x) => { return x; });\n};\nchunkArray([1], 2);\n")
    assert definition_text(js, "chunkArray", "javascript") == \
        "const chunkArray = (items, n) => {\n  return items.map((x) => { return x; });\n};\n"
    method = "class A {\n  static async load(id) {\n    if (x) { return '}'; }\n  }\n}\n"
    assert definition_text(method, "load", "javascript") == \
        "static async load(id) {\n  if (x) { return '}'; }\n}\n"
    c = ("size_t count(const char *s);\nstatic size_t\ncount(const char *s)\n{\n"
         "    return s[0] == '{';\n}\nint main(void) { return count(\"\"); }\n")
    assert definition_text(c, "count", "c") == \
        "static size_t\ncount(const char *s)\n{\n    return s[0] == '{';\n}\n"
    cpp = "auto join(const V& v) const -> std::string {\n    return {};\n}\n"
    assert definition_text(cpp, "join", "cpp") == cpp
    assert definition_text("int f(int x) {\n    return x;\n", "f", "c") is None  # cut off


def test_the_answers_function_goes_in_place_with_its_new_imports_and_helpers():
    code = '"""Doc."""\nimport time\n\n\ndef a():\n    return 1\n\n\ndef b():\n    return 2\n'
    t = task("python", code, "a", "assert a() == 3\n", answer_name="c")
    answer = ("```python\nimport asyncio\nimport time\n\ndef _three():\n    return 3\n\n"
              "def c():\n    return _three()\n```")
    program = edited_program(t, answer)
    assert program is not None
    assert program.startswith("import asyncio\n") and program.count("import time") == 1
    assert "def _three():\n    return 3\n\n\ndef c():" in program and "def a()" not in program
    assert "def b():\n    return 2\n" in program
    assert edited_program(t, "I can't help with that.") is None


def test_outcomes_of_the_check():
    t = task("python", "def f():\n    return 1\n", "f", "assert f() == 2\n")
    assert check_answer(t, "```python\ndef f():\n    return 2\n```").outcome == "pass"
    assert check_answer(t, "```python\ndef f():\n    return 3\n```").outcome == "failed"
    assert check_answer(t, "no code here").outcome == "no code"
    c = task("c", "int f(void) { return 1; }\n", "f", "int main(void) { return f() != 2; }\n")
    assert check_answer(c, "```c\nint f(void) { return 2 }\n```").outcome == "build error"
    assert run_program("python", "while True:\n    pass\n", timeout=1).outcome == "timeout"


def test_the_summary_counts_passes_and_times_the_large_cases():
    def run(passed: bool, tokens: int, seconds: float) -> dict:
        return {"passed": passed, "outcome": "pass" if passed else "failed",
                "prompt_tokens": tokens, "time_s": seconds}

    rows = [{"task": "a", "raw": run(True, 2000, 60), "pipeline": run(True, 500, 10)},
            {"task": "b", "raw": run(True, 1000, 20), "pipeline": run(False, 300, 10)},
            {"task": "c", "raw": run(False, 1500, 40), "pipeline": run(True, 400, 20)},
            {"task": "d", "raw": run(False, 1500, 40)}]
    s = summarize({"tasks": rows}, large_tokens=1200)
    assert (s["raw_passed"], s["raw_runs"], s["pipeline_passed"], s["pipeline_runs"]) == \
        (2, 4, 2, 3)
    assert s["large_cases"] == 2 and s["large_time_ratio_median"] == 4.0
    assert s["time_ratio_median"] == 2.0
    assert s["pipeline_lost"] == ["b"] and s["pipeline_won"] == ["c"]
