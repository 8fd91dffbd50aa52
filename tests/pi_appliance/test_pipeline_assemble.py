"""Assembly: instruction first, kept code in order, one comment line per omitted region."""

from __future__ import annotations

from pi_appliance.pipeline.assemble import assemble, completion_prompt, predicted
from pi_appliance.pipeline.chunk import chunk
from pi_appliance.pipeline.config import PipelineConfig
from pi_appliance.pipeline.dedup import dedup
from pi_appliance.pipeline.extract import extract
from pi_appliance.pipeline.segment import segment

CFG = PipelineConfig(chunk_threshold=10)

FETCH = '''def fetch_{0}(key):
    resp = requests.get(f"{{BASE}}/{0}/{{key}}", timeout=10)
    resp.raise_for_status()
    return resp.json()
'''


def build(text: str, keep: set[str], language: str = "python") -> str:
    segments = segment(text)
    instruction = extract(segments)
    assert instruction is not None
    code_at = next(i for i, s in enumerate(segments) if s.kind == "code")
    chunks = chunk(segments[code_at].text, language, CFG, block=code_at)
    deduped = dedup(chunks, CFG)
    kept = {c.index for c in chunks if c.name in keep or c.kind == "imports"}
    kept |= {n for c in chunks if c.index in kept for n in c.needs}
    return assemble(segments, instruction, chunks, kept, deduped.duplicate_of).content


def test_instruction_first_then_code_in_order_with_notes():
    code = "import requests\n\n" + "\n\n".join(FETCH.format(n) for n in
                                               ("user", "order", "refund", "coupon", "item"))
    code += "\n\ndef main():\n    print(fetch_user(1))\n"
    text = f"This is our client.\n\n```python\n{code}```\n\nConvert fetch_user to async."
    out = build(text, {"fetch_user", "main"})
    assert out.startswith("Convert fetch_user to async.\n\nThis is our client.\n\n```python\n")
    body = out.split("```python\n", 1)[1]
    assert body.index("import requests") < body.index("def fetch_user") < body.index("def main")
    assert "# … 4 similar functions omitted (like fetch_user): fetch_order, fetch_refund, " \
           "fetch_coupon, fetch_item …" in body
    assert "Convert fetch_user" not in out[1:]  # sent once, first


def test_notes_use_the_language_comment_and_indent_and_name_what_was_left_out():
    code = ("impl Client {\n    fn get(&self) -> u32 {\n        1\n    }\n\n"
            "    fn put(&mut self, v: u32) {\n        self.v = v;\n    }\n\n"
            "    fn len(&self) -> usize {\n        0\n    }\n}\n")
    out = build(f"Explain Client::get.\n```rust\n{code}```", {"Client.get"}, "rust")
    assert "\n    // … 2 methods omitted: Client.put, Client.len …\n}" in out
    assert out.endswith("```")


def test_a_fully_omitted_class_is_one_note():
    code = ("class A:\n    def a(self):\n        return 1\n\n"
            "    def b(self):\n        return 2\n\n\ndef main():\n    return A().a()\n")
    out = build(f"Explain main.\n```python\n{code}```", {"main"})
    assert "# … 1 class omitted: A …" in out
    assert "def a(" not in out


def test_chat_and_completion_forms():
    code = "\n\n".join(FETCH.format(n) for n in ("user", "order"))
    segments = segment(f"Add retries to fetch_order.\n```python\n{code}```")
    instruction = extract(segments)
    assert instruction is not None
    chunks = chunk(segments[1].text, "python", CFG, block=1)
    done = assemble(segments, instruction, chunks, {1}, {})
    assert done.messages == [{"role": "user", "content": done.content}]
    assert done.content.startswith("Add retries to fetch_order.")
    assert done.prompt == completion_prompt(done.content)
    assert done.prompt.startswith("### Instruction:\nAdd retries") and done.prompt.endswith(
        "### Response:\n")


def test_prose_context_can_be_dropped():
    code = "\n\n".join(FETCH.format(n) for n in ("user", "order"))
    segments = segment(f"Some background.\n\nAdd retries to fetch_order.\n```python\n{code}```")
    instruction = extract(segments)
    assert instruction is not None
    chunks = chunk(segments[1].text, "python", CFG, block=1)
    assert "Some background." in assemble(segments, instruction, chunks, {1}, {}).content
    assert "Some background." not in assemble(segments, instruction, chunks, {1}, {},
                                              context=False).content


def test_the_prediction_is_the_chosen_code_in_order_without_notes():
    code = "import requests\n\n" + "\n\n".join(FETCH.format(n) for n in
                                               ("user", "order", "refund", "coupon"))
    text = f"```python\n{code}```\n\nConvert fetch_user and fetch_refund to async."
    segments = segment(text)
    chunks = chunk(segments[0].text, "python", CFG, block=0)
    chosen = {c.index for c in chunks if c.name in ("fetch_user", "fetch_refund")}
    out = predicted(segments, chunks, chosen)
    assert out == FETCH.format("user") + "\n" + FETCH.format("refund").rstrip("\n")
    assert predicted(segments, chunks, set()) == ""
