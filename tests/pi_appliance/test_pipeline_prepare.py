"""prepare(): the pipeline end to end, its fallbacks and reasons, the budget, the stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pi_appliance.pipeline import OverBudget, PipelineConfig, Prepared, estimate_tokens, prepare
from pi_appliance.pipeline.errors import ConfigError

CFG = PipelineConfig()
SEED = (Path(__file__).parents[1] / "data" / "corpus" / "seed_async_refactor.md").read_text()
STATS = {"original_chars", "original_tokens", "sent_chars", "sent_tokens", "reduction",
         "chunks_total", "chunks_kept", "chunks_dropped", "chunks_deduplicated", "pipeline_ms"}


def ticking(step: float = 0.002):
    """A fake clock that advances `step` seconds per reading."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_the_seed_prompt_is_reduced_around_its_instruction():
    out = prepare(SEED, CFG)
    assert out.mode == "pipeline" and out.reduction >= 0.62
    assert out.instruction is not None and out.instruction.startswith("Refactor this module")
    content = out.messages[0]["content"]
    assert content.startswith(out.instruction)
    assert out.messages == [{"role": "user", "content": content}]
    assert out.prompt.startswith("### Instruction:\n" + out.instruction)
    assert "fetch_user" in out.kept
    assert out.chunks_deduplicated == 8
    assert out.chunks_total == out.chunks_kept + out.chunks_dropped + out.chunks_deduplicated
    assert (out.language, out.language_reason) == ("python", "code fence tag ```python")
    assert out.sent_chars == len(content) and out.original_chars == len(SEED)
    assert out.sent_tokens == estimate_tokens(content)


def test_stats_dict_is_json_and_holds_no_prompt_text():
    out = prepare(SEED, CFG, clock=ticking())
    stats = out.stats_dict()
    assert stats.keys() >= STATS
    assert stats["pipeline_ms"] == pytest.approx(2.0)
    assert json.loads(json.dumps(stats)) == stats
    assert "fetch_user" not in json.dumps(stats)


def test_raw_mode_skips_the_reduction_but_still_counts():
    out = prepare(SEED, CFG, mode="raw", count_tokens=len)
    assert (out.mode, out.reason, out.reduction) == ("raw", "raw mode requested", 0.0)
    assert out.prompt == SEED and out.messages == [{"role": "user", "content": SEED}]
    assert out.original_tokens == out.sent_tokens == len(SEED)


@pytest.mark.parametrize("text, reason", [
    ("import os\n" * 300, "no instruction found"),
    ("Refactor this.\n```python\nimport os\n```", "code is 9 chars, not over the chunking "
                                                   "threshold of 1500"),
])
def test_raw_fallbacks_say_why(text, reason):
    out = prepare(text, CFG)
    assert out.mode == "raw" and out.reason.startswith(reason)
    assert out.prompt == text


def test_too_small_a_reduction_falls_back_to_raw():
    out = prepare(SEED, PipelineConfig(min_reduction=0.95))
    assert out.mode == "raw"
    assert out.reason.startswith("reduction 7") and out.reason.endswith("under the minimum 95%")
    assert out.instruction is not None and out.named


def test_a_budget_drops_the_lowest_ranked_code_first():
    full = prepare(SEED, CFG)
    tight = prepare(SEED, CFG, budget_tokens=full.sent_tokens - 40)
    assert tight.mode == "pipeline" and tight.sent_tokens <= full.sent_tokens - 40
    assert "to fit" in tight.reason and tight.chunks_kept < full.chunks_kept
    assert tight.messages[0]["content"].startswith(tight.instruction or "?")


def test_the_instruction_is_never_cut_and_over_budget_says_by_how_much():
    instruction_alone = estimate_tokens("### Instruction:\n" + (prepare(SEED, CFG).instruction
                                                                or "") + "\n\n### Response:\n")
    out = prepare(SEED, CFG, budget_tokens=instruction_alone)
    assert out.chunks_kept == 0 and out.prompt.count("Refactor this module") == 1
    with pytest.raises(OverBudget) as info:
        prepare(SEED, CFG, budget_tokens=instruction_alone - 5)
    assert info.value.over == 5 and "5 over the budget" in str(info.value)


def test_raw_over_budget_is_an_error_too():
    with pytest.raises(OverBudget, match="the raw prompt needs"):
        prepare(SEED, CFG, mode="raw", budget_tokens=100)
    with pytest.raises(OverBudget, match="no instruction found"):
        prepare("import os\n" * 300, CFG, budget_tokens=100)


def test_raw_over_budget_with_a_small_reduction_still_sends_the_reduction():
    out = prepare(SEED, PipelineConfig(min_reduction=0.95), budget_tokens=1000)
    assert out.mode == "pipeline" and "the raw prompt is over the budget" in out.reason


def test_prepared_is_frozen():
    out = prepare(SEED, CFG)
    assert isinstance(out, Prepared)
    with pytest.raises(AttributeError):
        out.mode = "raw"  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"chunk_threshold": -1}, "pipeline.chunk_threshold must be >= 0"),
    ({"min_reduction": 1.5}, "pipeline.min_reduction must be between 0 and 1"),
    ({"window_overlap": 1000}, "pipeline.window_overlap must be smaller"),
    ({"top_k": 0}, "pipeline.top_k must be >= 1"),
])
def test_config_is_validated_with_the_key_named(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        PipelineConfig(**kwargs)


def test_code_without_a_splittable_body_is_sent_raw_not_dropped():
    text = "Fix the list.\n```python\nx = [" + "1, " * 2000 + "]\n```"
    out = prepare(text, CFG)
    assert out.mode == "raw" and out.prompt == text


def test_a_mostly_prose_message_goes_raw():
    prose = " ".join(["We measured the cache under load and the numbers look odd."] * 160)
    code = "\n\n".join(f"def handler_{i}(req):\n    return cache.get(req.key, {i})"
                       for i in range(28))
    text = f"{prose}\n\nWhy is the hit rate so low?\n\n```python\n{code}\n```"
    out = prepare(text, CFG)
    assert out.mode == "raw" and "under the minimum 20%" in out.reason


@pytest.mark.parametrize("text", ["", "   ", "hi", "```\n```"])
def test_degenerate_messages_go_raw(text):
    out = prepare(text, CFG)
    assert out.mode == "raw" and out.prompt == text and out.reduction == 0


def test_an_edit_task_predicts_the_kept_code_it_names():
    out = prepare(SEED, CFG)
    assert out.edit and out.prediction is not None
    assert "def fetch_user(" in out.prediction and " omitted" not in out.prediction
    assert all(line in SEED for line in out.prediction.split("\n"))  # code as it was given
    named = "Rename fetch_user to get_user.\n\n" + SEED.split("\n", 1)[1]
    only = prepare(named, CFG)
    assert only.prediction is not None and only.prediction.startswith("def fetch_user(")
    assert len(only.prediction) < len(out.prediction)  # the task names one function


@pytest.mark.parametrize("text, prediction", [
    ("Refactor this.\n```python\nimport os\n```", "import os"),  # raw: the message's code
    ("Explain this.\n```python\nimport os\n```", None),
    ("Fix the typo in: recieve", None),  # an edit, but no code to repeat
    ("import os\n" * 300, None),  # no instruction
])
def test_raw_fallbacks_predict_the_code_of_edit_tasks(text, prediction):
    out = prepare(text, CFG)
    assert out.mode == "raw" and out.prediction == prediction


def test_no_prediction_when_raw_mode_is_requested():
    out = prepare(SEED, CFG, mode="raw")
    assert out.prediction is None and not out.edit
