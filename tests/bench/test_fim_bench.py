"""bench/fim.py's pure parts: cutting holes from code, scoring a middle, the cursor case."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.fim import (
    cursor_case,
    cut_holes,
    first_line,
    not_minified,
    score,
    summarize_speed,
)

SOURCE = "".join(f"def helper_{i}(value, scale):\n    return value * scale + {i}\n\n"
                 for i in range(40))


def test_holes_put_the_file_back_together_and_respect_the_windows():
    holes = cut_holes("x.py", SOURCE, 10, random.Random(7), before=6, after=3)
    assert len(holes) == 10 and {h.kind for h in holes} == {"line", "span"}
    lines = SOURCE.splitlines(keepends=True)
    for hole in holes:
        whole = hole.prefix + hole.middle + hole.suffix
        assert whole in SOURCE
        assert hole.prefix.count("\n") <= 6 and hole.suffix.count("\n") <= 3 + 1
        assert hole.middle.strip()
        if hole.kind == "line":
            assert hole.middle == lines[hole.line] and hole.prefix.endswith("\n")
        else:
            assert "\n" not in hole.middle and not hole.prefix.endswith("\n")


def test_holes_are_the_same_for_the_same_seed_and_skip_blank_lines():
    first = cut_holes("x.py", SOURCE, 8, random.Random(1), before=4, after=2)
    assert first == cut_holes("x.py", SOURCE, 8, random.Random(1), before=4, after=2)
    assert all(SOURCE.splitlines()[h.line].strip() for h in first)


def test_score_compares_the_first_line_and_the_hole_only():
    assert score("    return x\n", "    return x\n    y = 2\n") == (True, 1.0)
    exact, ratio = score("foo(a, b)", "foo(a, c)")
    assert not exact and 0.8 < ratio < 1.0
    assert score("x = 1\n", "") == (False, 0.0)
    assert first_line("\n\n  value = 3  \nrest") == "value = 3"


def test_cursor_case_cuts_at_line_starts_within_the_sizes():
    prefix, suffix = cursor_case(SOURCE, 600, 300)
    assert prefix.endswith("\n") and suffix.endswith("\n")
    assert 500 < len(prefix) <= 600 and 200 < len(suffix) <= 300
    assert prefix + suffix in SOURCE


def test_minified_code_is_not_a_source():
    assert not_minified(SOURCE * 2)
    assert not not_minified("var a=1;" * 500)


def test_speed_medians_leave_out_samples_taken_while_the_machine_was_busy():
    def sample(ttft: float, others: float) -> dict:
        return {"ttft_s": ttft, "total_s": ttft + 2, "prompt_n": 10, "predicted_n": 48,
                "others_cpu": others, "text": None}

    cases = ("cold", "warm", "typed")
    runs = {peer: {case: [sample(scale * 2, 0.05), sample(scale * 9, 0.6),
                          sample(scale * 4, 0.1)] for case in cases}
            for peer, scale in (("llama-server", 1.0), ("backend", 0.5), ("orchestrator", 0.5))}
    got = summarize_speed({"runs": runs}, 0.15)
    cold = got["medians"]["llama-server"]["cold"]
    assert cold["ttft_s"] == 3.0 and cold["kept"] == 2 and cold["samples"] == 3
    assert got["ratios"]["backend/llama-server typed ttft"] == 0.5
    everything = summarize_speed({"runs": runs}, 0.0)  # none that quiet: all count
    assert everything["medians"]["backend"]["warm"]["kept"] == 3
