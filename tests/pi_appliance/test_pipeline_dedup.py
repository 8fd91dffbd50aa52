"""Deduplication: exact, renamed and near-exact repeats collapse; protected chunks stay."""

from __future__ import annotations

from pi_appliance.pipeline.chunk import chunk
from pi_appliance.pipeline.config import PipelineConfig
from pi_appliance.pipeline.dedup import dedup

CFG = PipelineConfig(chunk_threshold=10)

FETCH = '''def fetch_{name}({arg}):
    """Fetch one {name}."""
    url = f"{{BASE_URL}}/{name}s/{{{arg}}}"
    for attempt in range(MAX_RETRIES):
        try:
            resp = requests.get(url, timeout=TIMEOUT)
            resp.raise_for_status(){extra}
            return resp.json()
        except requests.RequestException:
            time.sleep(2 ** attempt)  # back off
    raise RuntimeError("{name} not found")
'''
OTHER = '''def render(rows):
    lines = []
    for row in rows:
        lines.append(" | ".join(str(cell).ljust(12) for cell in row))
    return "\\n".join(lines)
'''


def fetchers(*specs: tuple[str, str, str]) -> str:
    return "\n\n".join(FETCH.format(name=n, arg=a, extra=e) for n, a, e in specs)


def test_exact_repeats_collapse_to_the_first():
    code = fetchers(("user", "uid", ""), ("user", "uid", ""), ("user", "uid", "")) + "\n" + OTHER
    chunks = chunk(code, "python", CFG)
    result = dedup(chunks, CFG)
    assert [c.name for c in result.chunks] == ["fetch_user", "render"]
    assert result.dropped == 2
    assert result.duplicate_of == {1: 0, 2: 0}


def test_renamed_copies_are_exact_repeats_once_names_are_canonical():
    code = fetchers(("user", "uid", ""), ("order", "order_id", ""), ("invoice", "inv", ""))
    chunks = chunk(code, "python", CFG)
    assert dedup(chunks, CFG).duplicate_of == {1: 0, 2: 0}
    # Without canonical names the near-exact test still sees them: local names are blanked.
    literal = PipelineConfig(chunk_threshold=10, canonicalize_identifiers=False)
    assert dedup(chunks, literal).duplicate_of == {1: 0, 2: 0}


def test_comments_and_whitespace_do_not_matter():
    plain = FETCH.format(name="user", arg="uid", extra="")
    noisy = plain.replace("# back off", "# wait longer each time").replace("    url", "    url ")
    chunks = chunk(plain + "\n\n" + noisy.replace("fetch_user", "fetch_user2"), "python", CFG)
    assert dedup(chunks, CFG).duplicate_of == {1: 0}


def test_near_exact_copies_with_an_extra_line_collapse():
    extra = "\n            log.debug('fetched %s', resp.url)"
    code = fetchers(("user", "uid", ""), ("order", "oid", extra), ("refund", "rid", ""))
    result = dedup(chunk(code, "python", CFG), CFG)
    assert result.duplicate_of == {1: 0, 2: 0}


def test_different_functions_are_kept():
    code = fetchers(("user", "uid", "")) + "\n\n" + OTHER
    assert dedup(chunk(code, "python", CFG), CFG).dropped == 0


def test_protected_chunks_are_kept_and_preferred_as_the_one_kept():
    code = fetchers(("user", "uid", ""), ("order", "oid", ""), ("refund", "rid", ""))
    chunks = chunk(code, "python", CFG)
    result = dedup(chunks, CFG, protect={1})
    assert [c.name for c in result.chunks] == ["fetch_order"]
    assert result.duplicate_of == {0: 1, 2: 1}


def test_a_protected_chunk_pasted_twice_verbatim_is_still_a_repeat():
    code = fetchers(("user", "uid", ""), ("user", "uid", ""))
    assert dedup(chunk(code, "python", CFG), CFG, protect={0, 1}).duplicate_of == {1: 0}


def test_glue_and_tiny_chunks_are_never_collapsed():
    code = "import os\n\nimport os\n\ndef a():\n    pass\n\ndef b():\n    pass\n"
    assert dedup(chunk(code, "python", CFG), CFG).dropped == 0
