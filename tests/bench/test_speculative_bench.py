"""bench/speculative.py's pure parts: the cases, the rate, identity with plain, the ratios."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.speculative import (
    CASES,
    code_blocks,
    copytree_case,
    generation_rate,
    load_cases,
    mark_identity,
    steps,
    summarize,
)

SHUTIL = '''import os

def _copytree(entries, src, dst):
    return dst


def copytree(src, dst):
    """Copy a tree."""
    return _copytree([], src, dst)


def other():
    pass
'''


def test_every_case_loads_and_edits_carry_their_code():
    cases = load_cases(CASES)
    assert [c.name for c in cases] == list(CASES)
    for case in cases:
        if case.kind == "edit":
            assert case.original and case.original in case.prompt
            assert "```" not in case.original
        else:
            assert case.original == "" and "\n" not in case.prompt


def test_code_blocks_are_the_fence_bodies_joined():
    text = "Fix it:\n\n```py\na = 1\n```\n\nand\n```js\nb();\n```\nThanks\n"
    assert code_blocks(text) == "a = 1\n\nb();\n"
    assert code_blocks("no code here") == ""


def test_copytree_case_cuts_both_functions_from_the_source():
    case = copytree_case(SHUTIL)
    assert case.original.startswith("def _copytree(") and case.original.endswith(
        "return _copytree([], src, dst)\n")
    assert "other" not in case.original and "import os" not in case.original
    assert case.original in case.prompt and case.prompt.startswith("Add type hints")


def test_generation_rate_leaves_out_the_first_token_wait():
    assert generation_rate(600, 2.0, 14.0) == 50.0
    assert generation_rate(0, 0.1, 0.2) is None
    assert generation_rate(5, 1.0, 1.0) is None


def test_steps_count_one_forward_pass_per_own_token():
    spec = {"tokens": 600, "accepted": 500, "drafted": 520, "ttft_s": 0.5, "done_s": 10.5}
    assert steps(spec) == (100, 5.2, 100.0)
    plain = {"tokens": 600, "accepted": None, "drafted": None, "ttft_s": 0.5, "done_s": 24.5}
    assert steps(plain) == (600, None, 40.0)


def run(case: str, peer: str, repeat: int, ttft: float, done: float, *, kind: str = "edit",
        drafted: int | None = None, accepted: int | None = None, text: str = "x",
        others: float = 0.0) -> dict:
    return {"case": case, "kind": kind, "peer": peer, "repeat": repeat, "ttft_s": ttft,
            "done_s": done, "tokens": 600, "drafted": drafted, "accepted": accepted,
            "text": text, "others_cpu": others}


def test_identity_compares_each_peer_with_plain_on_its_own_server():
    batch = [run("a", "backend plain", 0, 0, 1, text="same"),
             run("a", "backend speculative", 0, 0, 1, text="same"),
             run("a", "llama-server plain", 0, 0, 1, text="other"),
             run("a", "llama-server ngram-simple", 0, 0, 1, text="other")]
    mark_identity(batch)
    assert [r["same_as_plain"] for r in batch] == [None, True, False, True]


def test_summary_medians_ratios_and_goals():
    runs = []
    for r in range(3):
        busy = 0.9 if r == 2 else 0.0  # the third repeat was taken on a busy machine
        for case, kind, ours_s in (("edit1", "edit", 4.0), ("edit2", "edit", 6.0),
                                   ("new", "new", 24.0)):
            runs += [run(case, "backend plain", r, 0.5, 24.5, kind=kind, others=busy),
                     run(case, "backend speculative", r, 0.5, ours_s + 0.5, kind=kind,
                         drafted=100, accepted=75, others=busy),
                     run(case, "llama-server ngram-simple", r, 0.5, 12.5, kind=kind,
                         drafted=40, accepted=10, others=busy)]
        runs[-1]["done_s"] = 99.0 if r == 2 else runs[-1]["done_s"]  # left out: busy
    for r in runs:
        r["same_as_plain"] = None if r["peer"] == "backend plain" else True
    got = summarize(runs, quiet=0.15)
    cell = got["medians"]["edit1"]["backend speculative"]
    assert cell["tok_s"] == 150.0 and cell["kept"] == 2 and cell["samples"] == 3
    assert cell["acceptance"] == 0.75 and cell["same_as_plain"] is True and not cell["busy"]
    assert cell["drafted_per_step"] == 100 / 525 and cell["ms_per_step"] == 4000 / 525
    assert got["medians"]["new"]["llama-server ngram-simple"]["tok_s"] == 50.0
    ratios = got["ratios"]["edit2"]
    assert ratios["backend speculative / backend plain"] == 4.0
    assert ratios["backend speculative / llama-server ngram-simple"] == 2.0
    assert ratios["backend speculative + prediction / backend plain"] is None  # not run
    goals = {(g["peer"], g["versus"], g["cases"]): g for g in got["goals"]}
    edit_plain = goals[("backend speculative", "backend plain", "edit")]
    assert edit_plain["value"] == 5.0 and edit_plain["met"] is True  # median of 6 and 4
    new_plain = goals[("backend speculative", "backend plain", "new")]
    assert new_plain["value"] == 1.0 and new_plain["met"] is True
    assert goals[("backend speculative + prediction", "backend plain", "edit")]["met"] is None
