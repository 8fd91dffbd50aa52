"""The corpus (tests/data/corpus): instruction kept, target code sent whole, reduction, raw;
edit tasks told from the others, and their prediction."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from pi_appliance.pipeline import PipelineConfig, prepare
from pi_appliance.pipeline.chunk import chunk
from pi_appliance.pipeline.extract import extract
from pi_appliance.pipeline.language import canonical
from pi_appliance.pipeline.segment import segment

CORPUS = Path(__file__).parents[1] / "data" / "corpus"
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "cases.toml").read_text())["case"]
CFG = PipelineConfig()


def test_the_corpus_is_broad():
    assert len(CASES) >= 15
    assert {c["language"] for c in CASES} >= {"python", "javascript", "typescript", "rust", "c",
                                               "cpp", ""}
    assert {c["mode"] for c in CASES} == {"pipeline", "raw"}
    assert {(c["edit"], c["mode"]) for c in CASES} == {(True, "pipeline"), (True, "raw"),
                                                       (False, "pipeline"), (False, "raw")}
    assert len(list(CORPUS.glob("*.*"))) == len(CASES) + 1
    seed = (CORPUS / "seed_async_refactor.md").read_text()
    assert 8000 <= len(seed) <= 8700


def whole_text_of(text: str, name: str, language: str | None) -> list[str]:
    """The source text of the chunks called `name` (all parts, if it was split)."""
    out = []
    for i, seg in enumerate(segment(text)):
        if seg.kind == "code":
            lang = canonical(seg.tag) or language
            out += [c.text for c in chunk(seg.text, lang, CFG, block=i) if c.name == name]
    return out


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]):
    text = (CORPUS / case["file"]).read_text()
    out = prepare(text, CFG)
    sent = out.messages[0]["content"]
    assert out.language == (case["language"] or None), out.language_reason
    assert out.mode == case["mode"], out.reason
    if "instruction" in case:
        assert out.instruction is not None and case["instruction"] in out.instruction
        assert case["instruction"] in sent
    instruction = extract(segment(text))
    assert (instruction is not None and instruction.edit) is case["edit"], out.instruction
    assert out.edit is case["edit"]
    assert (out.prediction is not None) is case["edit"]
    if out.mode == "raw":
        assert sent == text and out.reduction == 0
        if case["edit"]:  # sent raw: all the message's code is what the answer repeats
            assert all(s.text in (out.prediction or "") for s in segment(text)
                       if s.kind == "code")
        return
    assert out.reduction >= case["min_reduction"]
    assert sent.startswith(out.instruction or "?")
    for name in case.get("kept", []):
        assert name in out.kept
        pieces = whole_text_of(text, name, out.language)
        assert pieces and all(piece in sent for piece in pieces), f"{name} not sent whole"
        if case["edit"]:  # the code the task names is what its answer repeats
            assert all(piece in (out.prediction or "") for piece in pieces), name
    for fragment in case.get("contains", []):
        assert fragment in sent
        assert not case["edit"] or fragment in (out.prediction or "")
    if out.prediction is not None:  # code only: no notes on what was left out
        assert " omitted" not in out.prediction and out.instruction not in out.prediction
        assert len(out.prediction) < len(sent)
