"""Instruction extraction: prose directives and TODO/FIXME comments, anywhere; names mentioned."""

from __future__ import annotations

import pytest

from pi_appliance.pipeline.extract import extract, is_directive, mentions
from pi_appliance.pipeline.segment import segment

CODE = "```python\ndef fetch_user(uid):\n    return requests.get(uid)\n```"


def test_instruction_at_the_top():
    ins = extract(segment(f"Refactor fetch_user to async.\n\n{CODE}"))
    assert ins is not None
    assert ins.text == "Refactor fetch_user to async."
    assert ins.mentions == ("fetch_user",)
    assert ins.directives[0].source == "prose"


def test_instruction_at_the_bottom_after_context():
    ins = extract(segment(f"Here is our client.\n\n{CODE}\n\nPlease convert it to async/await."))
    assert ins is not None and ins.text == "Please convert it to async/await."


def test_instruction_inline_between_code_blocks():
    text = f"{CODE}\n\nNow write tests for fetch_user, they must use pytest.\n\n{CODE}"
    ins = extract(segment(text))
    assert ins is not None
    assert ins.text == "Now write tests for fetch_user, they must use pytest."
    assert ins.directives[0].segment == 1


def test_instruction_after_an_opening_phrase_and_in_bare_text():
    text = ("In db.py, rename get_conn to acquire_connection\n"
            "import sqlite3\ndef get_conn():\n    pass\n")
    ins = extract(segment(text))
    assert ins is not None and ins.text.startswith("In db.py, rename get_conn")
    assert "get_conn" in ins.mentions


def test_a_directive_that_names_nothing_takes_the_names_from_the_prose_around_it():
    text = (f"There's an off-by-one in `fetch_user`: it skips the last page. Fix it.\n\n{CODE}"
            "\n\nMake sure other code keeps working.")
    ins = extract(segment(text))
    assert ins is not None and ins.text == "Fix it.\nMake sure other code keeps working."
    assert ins.mentions == ("fetch_user",)
    named = extract(segment(f"`fetch_user` is slow. Cache `parse` instead.\n\n{CODE}"))
    assert named is not None and named.mentions == ("parse",)


@pytest.mark.parametrize("comment", [
    "# TODO: add retries to fetch_user",
    "// TODO add retries to fetch_user",
    "/* FIXME: add retries to fetch_user */",
    "# FIXME add retries to fetch_user",
])
def test_comment_directives_are_the_instruction_when_prose_has_none(comment):
    text = f"Here is the code.\n\n```\nimport x\n{comment}\nx.run()\n```"
    ins = extract(segment(text))
    assert ins is not None
    assert ins.text.endswith("add retries to fetch_user")
    assert ins.text.startswith(("TODO", "FIXME"))
    assert ins.comment_lines == ((1, 1),)
    assert ins.mentions == ("fetch_user",)


def test_a_todo_continued_on_the_next_comment_line_is_kept_whole():
    code = ("def f():\n    # TODO: retry when the server answers 503\n"
            "    #   or the connection drops.\n    pass\n")
    ins = extract(segment(code))
    assert ins is not None
    assert ins.text == "TODO: retry when the server answers 503 or the connection drops."


def test_prose_wins_over_an_unrelated_todo_unless_it_points_at_it():
    code = "```python\ndef f():\n    # TODO(#12): drop after the migration\n    pass\n```"
    ins = extract(segment(f"Explain f.\n\n{code}"))
    assert ins is not None and ins.text == "Explain f."
    ins = extract(segment(f"Do the TODO in f.\n\n{code}"))
    assert ins is not None and "TODO: drop after the migration" in ins.text


def test_no_instruction():
    assert extract(segment(f"Here is my code:\n\n{CODE}")) is None
    assert extract(segment("import os\nprint(os.getcwd())\n")) is None


@pytest.mark.parametrize("sentence, expected", [
    ("Refactor this to async/await.", True),
    ("rewrite the parser using a state machine", True),
    ("Please add type hints.", True),
    ("Can you explain what this does", True),
    ("Why does this crash on empty input?", True),
    ("It should use aiohttp instead of requests.", True),
    ("Optimize it.", True),
    ("- fix the bug in load_config", True),
    ("Here is my code:", False),
    ("Thanks!", False),
    ("This is the legacy module we use for billing.", False),
    ("Let's see.", False),
])
def test_directive_sentences(sentence, expected):
    assert is_directive(sentence) is expected


def test_mentions_code_like_names_only():
    found = mentions("Rewrite `Client.get`, Matrix::multiply and parse_line() in app.py; "
                     "keep loadDashboard as is, e.g. the JavaScript version")
    assert found == ("Client.get", "Matrix.multiply", "parse_line", "loadDashboard")


def test_a_qualified_mention_does_not_also_name_its_class():
    assert mentions("Add types to OrderService.applyDiscount") == ("OrderService.applyDiscount",)


@pytest.mark.parametrize("instruction, edit", [
    ("Refactor fetch_user to async/await.", True),
    ("Please add type hints.", True),
    ("Can you convert this to a dataclass?", True),
    ("In db.py, rename get_conn to acquire_connection", True),
    ("the loop is slow on big inputs, please optimize it", True),
    ("This is slow so please speed it up", True),
    ("- fix the bug in load_config\n- add a docstring", True),
    ("Port this to Rust.", True),
    ("Clean up fetch_user and keep the names.", True),
    ("Make parse reject empty input.", True),
    ("Fix the failing test in test_parse", True),  # the test's code is the code edited
    ("Explain what fetch_user does.", False),
    ("Can you explain what this does?", False),
    ("Why does this crash on empty input?", False),
    ("How do I convert this to a generator?", False),  # a question: answered in prose first
    ("Review this for security problems.", False),
    ("Write unit tests for fetch_user.", False),
    ("Add tests for fetch_user.", False),
    ("Implement unit tests covering the retries", False),
    ("Don't change anything, just explain it.", False),
    ("Explain fetch_user, then rewrite it without recursion.", False),  # the first one tells
    ("Keep the names the same.", False),  # a directive, but not a task of its own
])
def test_edit_tasks_are_told_from_the_others(instruction, edit):
    ins = extract(segment(f"{instruction}\n\n{CODE}"))
    assert ins is not None and ins.edit is edit


@pytest.mark.parametrize("comment, edit", [
    ("# TODO: retry on 503", True),
    ("# FIXME", True),  # says nothing: the change is asked where it stands
    ("# FIXME: this overflows", True),
    ("# TODO: write tests for this", False),
])
def test_a_todo_is_an_edit_unless_it_asks_for_something_else(comment, edit):
    ins = extract(segment(f"```python\ndef f():\n    {comment}\n    pass\n```"))
    assert ins is not None and ins.edit is edit


def test_the_first_directive_that_tells_decides():
    text = f"Here is the client. Keep the names.\n\n{CODE}\n\nPlease convert it to async."
    ins = extract(segment(text))
    assert ins is not None and ins.edit
