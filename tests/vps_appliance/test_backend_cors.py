"""The backend's CORS (preflight before auth, allowed origins only), `created` in /v1/models,
and a `system_fingerprint` stable per model, on a real server with the tiny random llama."""

from __future__ import annotations

import os

import pytest
from conftest import base_url, spec, sse_events

from cerebrum.config import ConfigError
from vps_appliance.identity import identity
from vps_appliance.settings import load_settings

CHAT = "/v1/chat/completions"
APP = "https://app.example"
KEY = {"Authorization": "Bearer k1"}
PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.fixture
async def served(start_backend, tiny_model):
    server = await start_backend(spec("tiny", tiny_model, n_ctx=256), api_keys=("k1",),
                                 cors_origins=(APP,))
    return base_url(server)


def cors_of(headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower().startswith("access-control-")}


async def test_a_preflight_from_an_allowed_origin_is_answered_before_auth(served, http):
    async with http.options(served + CHAT, headers={"Origin": APP, **PREFLIGHT}) as resp:
        assert resp.status == 204
        cors = cors_of(resp.headers)
    assert cors["Access-Control-Allow-Origin"] == APP
    assert "POST" in cors["Access-Control-Allow-Methods"]
    assert "Authorization" in cors["Access-Control-Allow-Headers"]


async def test_other_origins_get_no_cors_headers(served, http):
    async with http.options(served + CHAT, headers={"Origin": "https://evil.example",
                                                    **PREFLIGHT}) as resp:
        assert resp.status == 204 and cors_of(resp.headers) == {}
    async with http.post(served + CHAT, json=BODY,
                         headers={"Origin": "https://evil.example", **KEY}) as resp:
        assert resp.status == 200 and cors_of(resp.headers) == {}
    async with http.options(served + CHAT) as resp:  # not a preflight: auth applies
        assert resp.status == 401


@pytest.mark.parametrize("stream", [False, True])
async def test_answers_and_errors_to_an_allowed_origin_say_so(served, http, stream):
    async with http.post(served + CHAT, json={**BODY, "stream": stream},
                         headers={"Origin": APP, **KEY}) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == APP
        assert "X-Request-ID" in resp.headers["Access-Control-Expose-Headers"]
        await resp.read()
    async with http.post(served + CHAT, json=BODY, headers={"Origin": APP}) as resp:
        assert resp.status == 401  # the browser may read why
        assert resp.headers["Access-Control-Allow-Origin"] == APP


async def test_without_configured_origins_there_are_no_cors_headers(start_backend, tiny_model,
                                                                    http):
    url = base_url(await start_backend(spec("tiny", tiny_model, n_ctx=256)))
    async with http.options(url + CHAT, headers={"Origin": APP, **PREFLIGHT}) as resp:
        assert resp.status == 204 and cors_of(resp.headers) == {}
    async with http.post(url + CHAT, json=BODY, headers={"Origin": APP}) as resp:
        assert resp.status == 200 and cors_of(resp.headers) == {}


async def test_models_have_created_and_answers_a_stable_fingerprint(served, http, tiny_model,
                                                                    start_backend):
    async with http.get(served + "/v1/models", headers=KEY) as resp:
        model = (await resp.json())["data"][0]
    assert model["created"] == int(os.stat(tiny_model).st_mtime)
    fingerprints = set()
    for url in (served, base_url(await start_backend(spec("tiny", tiny_model, n_ctx=256)))):
        async with http.post(url + CHAT, json={**BODY, "stream": True}, headers=KEY) as resp:
            events = [e async for e in sse_events(resp)]
        fingerprints |= {e["system_fingerprint"] for e in events if isinstance(e, dict)}
        async with http.post(url + CHAT, json=BODY, headers=KEY) as resp:
            fingerprints.add((await resp.json())["system_fingerprint"])
    assert len(fingerprints) == 1 and fingerprints.pop().startswith("fp_")


def test_the_fingerprint_changes_with_the_model_the_build_and_the_numerics(tiny_model):
    base = spec("tiny", tiny_model)
    fp = identity(base, 0, "0.3.36").fingerprint
    assert identity(base, 99, "0.3.36").fingerprint == fp  # the start time is no part of it
    assert identity(base, 0, "0.3.37").fingerprint != fp
    assert identity(spec("tiny", tiny_model, weight_repack=True), 0, "0.3.36").fingerprint != fp
    moved = identity(base, 0, "0.3.36", stat=lambda path: (1, 2))
    assert moved.fingerprint != fp and moved.created == 0
    missing = identity(spec("x", tiny_model.with_name("absent.gguf")), 7, "0.3.36")
    assert missing.created == 7


def test_cors_origins_from_the_file_and_the_environment(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text('cors_origins = ["http://localhost:3000", "https://app.example/"]\n')
    assert load_settings(path, {}).cors_origins == ("http://localhost:3000",
                                                    "https://app.example")
    env = {"CEREBRUM_BACKEND_CORS_ORIGINS": "*"}
    assert load_settings(path, env).cors_origins == ("*",)
    assert load_settings(None, {}).cors_origins == ()
    path.write_text('cors_origins = ["https://app.example/path"]\n')
    with pytest.raises(ConfigError, match="cors_origins: 'https://app\\.example/path' is not"):
        load_settings(path, {})
