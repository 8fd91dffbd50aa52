"""Budget: the calibrated estimate, fitting by dropping the lowest-ranked picks, OverBudget."""

from __future__ import annotations

import pytest

from pi_appliance.pipeline import OverBudget
from pi_appliance.pipeline.budget import estimate_tokens, fit


def test_estimate_is_zero_for_nothing_and_grows_with_text():
    assert estimate_tokens("") == 0
    code = "def f(x):\n    return x + 1\n"
    assert 0 < estimate_tokens(code) < estimate_tokens(code * 2) < estimate_tokens(code * 3)


def test_estimate_is_in_the_range_of_real_tokenizers_for_code():
    code = "def fetch_user(user_id):\n    resp = requests.get(url, timeout=10)\n" * 20
    # Real BPE tokenizers give ~3-4 characters per token of code; the estimate leans high.
    assert len(code) / 4.2 <= estimate_tokens(code) <= len(code) / 2.5


def render(kept: tuple[int, ...], context: bool) -> str:
    return "INSTRUCTION " + ("CONTEXT " * 5 if context else "") + " ".join(f"c{i}" * 10
                                                                          for i in kept)


def words(text: str) -> int:
    return len(text.split())


def test_everything_fits_without_a_budget():
    fitted = fit([(0,), (1, 2), (3,)], render, words, None)
    assert (fitted.picks, fitted.context) == (3, True)


def test_lowest_ranked_picks_are_dropped_first():
    picks = [(0,), (1, 2), (3,)]
    assert words(render((0, 1, 2, 3), True)) == 10
    fitted = fit(picks, render, words, 9)
    assert (fitted.picks, fitted.context, fitted.tokens) == (2, True, 9)
    assert fitted.text == render((0, 1, 2), True)
    assert fit(picks, render, words, 8).picks == 1


def test_context_goes_before_the_instruction_does():
    fitted = fit([(0,), (1,)], render, words, 4)
    assert (fitted.picks, fitted.context) == (2, False)
    fitted = fit([(0,), (1,)], render, words, 1)
    assert (fitted.picks, fitted.context, fitted.text) == (0, False, "INSTRUCTION ")


def test_over_budget_says_by_how_much():
    with pytest.raises(OverBudget) as info:
        fit([(0,)], render, lambda text: 100, 60)
    assert (info.value.needed, info.value.budget, info.value.over) == (100, 60, 40)
    assert "40 over the budget of 60" in str(info.value)
