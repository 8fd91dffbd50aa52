"""Every JSON body and SSE payload both tiers send is compact (`{"a":1,"b":"x"}`), as
llama-server writes it: replies, errors, streamed chunks, and the orchestrator's requests to
its backends. Editor plugins check the raw bytes (llama.vim: `"content"\\s*:"`), so one path
with Python's default `": "` separators would silently lose their completions."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import base_url, orchestrator_settings, spec
from faulty import Faulty

from pi_appliance.settings import Backend

KEY = "compact-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = {"messages": [{"role": "user", "content": "Say «hi», then stop."}], "max_tokens": 6,
        "temperature": 0}
ROOT = Path(__file__).parent.parent


def assert_compact(raw: bytes, what: str) -> None:
    """`raw` is exactly the compact serialization of what it holds."""
    compact = json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":")).encode()
    assert raw == compact, f"{what} is not compact: {raw[:160]!r}"


def sse_payloads(raw: bytes) -> list[bytes]:
    payloads = [line[len(b"data: "):] for line in raw.split(b"\n") if line.startswith(b"data: ")]
    assert payloads and payloads[-1] == b"[DONE]", raw[-200:]
    return payloads[:-1]


@pytest.fixture
async def tiers(start_backend, start_orchestrator, tiny_model):
    """{"backend": url, "orchestrator": url}, both requiring KEY."""
    backend = base_url(await start_backend(spec("tiny", tiny_model, n_ctx=256),
                                           api_keys=(KEY,)))
    settings = orchestrator_settings(("vps", backend), model="tiny", api_keys=(KEY,))
    settings = dataclasses.replace(settings, backends=(Backend("vps", backend, api_key=KEY),))
    return {"backend": backend, "orchestrator": await start_orchestrator(settings)}


CASES = [
    ("GET", "/health", None, {}),
    ("GET", "/v1/models", None, AUTH),
    ("GET", "/v1/models", None, {}),  # 401
    ("GET", "/no/such/path", None, AUTH),  # 404
    ("POST", "/v1/chat/completions", b"{not json", AUTH),  # 400
    ("POST", "/v1/chat/completions", json.dumps({**CHAT, "frobnicate": 1}).encode(), AUTH),
    ("POST", "/v1/chat/completions", json.dumps(CHAT).encode(), AUTH),
    ("POST", "/v1/completions", json.dumps({"prompt": "a, b", "max_tokens": 4}).encode(), AUTH),
    ("POST", "/infill", json.dumps({"input_prefix": "a", "input_suffix": "b",
                                    "n_predict": 0}).encode(), AUTH),
]


@pytest.mark.parametrize("tier", ["backend", "orchestrator"])
async def test_every_reply_body_is_compact(tiers, http, tier):
    statuses = set()
    for method, path, body, headers in CASES:
        async with http.request(method, tiers[tier] + path, data=body,
                                headers={"Content-Type": "application/json", **headers}) as r:
            raw = await r.read()
            statuses.add(r.status)
        assert_compact(raw, f"{tier} {method} {path} ({r.status})")
    assert {200, 400, 401, 404} <= statuses


@pytest.mark.parametrize("tier", ["backend", "orchestrator"])
async def test_every_sse_payload_is_compact(tiers, http, tier):
    for path, body in (("/v1/chat/completions", {**CHAT, "stream": True,
                                                  "stream_options": {"include_usage": True}}),
                       ("/v1/completions", {"prompt": "a, b", "max_tokens": 4,
                                            "stream": True})):
        async with http.post(tiers[tier] + path, json=body, headers=AUTH) as resp:
            assert resp.status == 200
            raw = await resp.read()
        for payload in sse_payloads(raw):
            assert_compact(payload, f"{tier} {path} SSE payload")


async def test_the_orchestrators_requests_upstream_are_compact(start_orchestrator, http,
                                                               aiohttp_server):
    upstream = Faulty()
    url = base_url(await aiohttp_server(upstream.app()))
    orch = await start_orchestrator(orchestrator_settings(("fake", url)))
    async with http.post(orch + "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
        assert resp.status == 200
        await resp.read()
    assert upstream.raw_bodies
    for raw in upstream.raw_bodies:
        assert_compact(raw, "the orchestrator's upstream request")


def test_one_serializer_per_tier():
    # The backend's replies all go through replies.json_response; the orchestrator's through
    # Falcon's media handler set in create_app. No other path may build a JSON reply.
    for package, banned in (("vps_appliance", "web.json_response("),
                            ("pi_appliance", "json.dumps(")):
        offenders = [str(p.relative_to(ROOT)) for p in (ROOT / package).rglob("*.py")
                     if banned in p.read_text() and p.name != "replies.py"]
        assert offenders == [], f"{banned} outside the tier's serializer: {offenders}"
