"""The orchestrator's CORS (preflight before auth and shedding, allowed origins only) and
`created` in /v1/models, on a real orchestrator in front of a fake upstream."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from conftest import base_url, orchestrator_settings, sse_events
from faulty import Faulty

from cerebrum.config import ConfigError
from pi_appliance.settings import load_settings

CHAT = "/v1/chat/completions"
APP = "http://localhost:5173"
KEY = {"Authorization": "Bearer k1"}
PREFLIGHT = {"Access-Control-Request-Method": "POST"}
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


async def orchestrator(aiohttp_server, start_orchestrator, **overrides) -> tuple[Faulty, str]:
    upstream = Faulty()
    settings = orchestrator_settings(("f", base_url(await aiohttp_server(upstream.app()))))
    return upstream, await start_orchestrator(dataclasses.replace(settings, **overrides))


def cors_of(headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower().startswith("access-control-")}


async def test_preflight_before_auth_and_headers_for_allowed_origins_only(
        aiohttp_server, start_orchestrator, http):
    upstream, url = await orchestrator(aiohttp_server, start_orchestrator, api_keys=("k1",),
                                       cors_origins=(APP,), max_concurrent=1)
    upstream.mode = "hold"  # the one admission place stays taken: a preflight needs none
    held = asyncio.ensure_future(http.post(url + CHAT, json=BODY, headers=KEY))
    async with asyncio.timeout(30):
        while upstream.calls == 0:
            await asyncio.sleep(0.01)
    async with http.post(url + CHAT, json=BODY, headers=KEY) as resp:
        assert resp.status == 503  # shed: the place is taken
    async with http.options(url + CHAT, headers={"Origin": APP, **PREFLIGHT}) as resp:
        assert resp.status == 204
        cors = cors_of(resp.headers)
    upstream.release.set()
    async with await held as resp:
        assert resp.status == 200
        await resp.read()
    assert cors["Access-Control-Allow-Origin"] == APP
    assert "Authorization" in cors["Access-Control-Allow-Headers"]
    async with http.options(url + CHAT, headers={"Origin": "http://evil.example",
                                                 **PREFLIGHT}) as resp:
        assert resp.status == 204 and cors_of(resp.headers) == {}
    async with http.post(url + CHAT, json={**BODY, "stream": True},
                         headers={"Origin": APP, **KEY}) as resp:
        assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == APP
        assert [e async for e in sse_events(resp)][-1] == "[DONE]"
    async with http.post(url + CHAT, json=BODY, headers={"Origin": APP}) as resp:
        assert resp.status == 401 and resp.headers["Access-Control-Allow-Origin"] == APP
    async with http.post(url + CHAT, json=BODY, headers={"Origin": "http://evil.example",
                                                         **KEY}) as resp:
        assert resp.status == 200 and cors_of(resp.headers) == {}


async def test_without_configured_origins_there_are_no_cors_headers(aiohttp_server,
                                                                    start_orchestrator, http):
    _, url = await orchestrator(aiohttp_server, start_orchestrator)
    async with http.options(url + CHAT, headers={"Origin": APP, **PREFLIGHT}) as resp:
        assert resp.status == 204 and cors_of(resp.headers) == {}
    async with http.post(url + CHAT, json=BODY, headers={"Origin": APP}) as resp:
        assert resp.status == 200 and cors_of(resp.headers) == {}
    async with http.get(url + "/v1/models") as resp:
        models = (await resp.json())["data"]
    assert all(isinstance(m["created"], int) and m["created"] > 0 for m in models)


def test_cors_origins_setting(tmp_path):
    assert load_settings(None, {"CEREBRUM_ORCHESTRATOR_CORS_ORIGINS": f"{APP}, *"}
                         ).cors_origins == (APP, "*")
    path = tmp_path / "o.toml"
    path.write_text('cors_origins = "http://a.example"\n')
    with pytest.raises(ConfigError, match="cors_origins"):
        load_settings(path, {})
