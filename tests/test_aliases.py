"""Model-name aliases on both tiers: the names agents send (`claude-…`, `gpt-…`) reach a
model (backend) or route (orchestrator); a configuration's own patterns come first; an
unknown name is still a 404 naming what would be accepted; `/v1/models` lists them."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import base_url, orchestrator_settings, spec
from faulty import Faulty

from cerebrum.config import ConfigError
from pi_appliance.errors import NotFound
from pi_appliance.settings import load_settings as orchestrator_settings_from
from pi_appliance.upstream import routing
from vps_appliance.settings import load_settings as backend_settings_from


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_the_orchestrators_own_aliases_come_before_the_defaults(tmp_path):
    s = orchestrator_settings_from(_toml(tmp_path, '[aliases]\n"claude-*haiku*" = "codellama"\n'),
                                   environ={})
    pick = {name: routing.choose(s, model=name, language=None, language_reason="").route.name
            for name in ("claude-haiku-4-5", "claude-sonnet-4-5", "gpt-5-codex", "o3")}
    assert pick == {"claude-haiku-4-5": "codellama", "claude-sonnet-4-5": s.default_route,
                    "gpt-5-codex": s.default_route, "o3": s.default_route}
    with pytest.raises(NotFound, match=r"'llama-9' is not routed here.*claude-\*") as info:
        routing.choose(s, model="llama-9", language=None, language_reason="")
    assert getattr(info.value, "status", None) == 404


@pytest.mark.parametrize("load, text, message", [
    (orchestrator_settings_from, '[aliases]\n"x-*" = "nope"\n', "no route called 'nope'"),
    (orchestrator_settings_from, 'aliases = 3\n', "aliases: expected a table"),
    (backend_settings_from, '[aliases]\n"x-*" = "nope"\n', "no model called 'nope'"),
    (backend_settings_from, '[aliases]\n"" = "x"\n', "aliases: expected a table"),
])
def test_an_alias_to_nothing_is_a_config_error(tmp_path, load, text, message):
    with pytest.raises(ConfigError, match=message):
        load(_toml(tmp_path, text), environ={})


async def test_v1_models_lists_the_aliases_on_both_tiers(start_backend, start_orchestrator,
                                                         aiohttp_server, tiny_model, http):
    backend = base_url(await start_backend(spec("tiny", tiny_model)))
    async with http.get(backend + "/v1/models") as resp:
        models = (await resp.json())["data"]
    assert models[0]["aliases"] == ["claude-*", "gpt-*", "o[0-9]*", "codex-*"]
    upstream = base_url(await aiohttp_server(Faulty().app()))
    url = await start_orchestrator(orchestrator_settings(("f", upstream)))
    async with http.get(url + "/v1/models") as resp:
        routes = {m.get("route"): m for m in (await resp.json())["data"]}
    assert routes["qwen"]["aliases"] == ["claude-*", "gpt-*", "o[0-9]*", "codex-*"]
    assert routes["codellama"]["aliases"] == []


async def test_the_backend_answers_an_alias_with_its_first_model(start_backend, tiny_model,
                                                                 http):
    backend = base_url(await start_backend(spec("tiny", tiny_model)))
    body = {"model": "gpt-4o", "prompt": "x", "max_tokens": 2}
    async with http.post(backend + "/v1/completions", json=body) as resp:
        assert resp.status == 200 and (await resp.json())["model"] == "tiny"
    async with http.post(backend + "/v1/completions", json={**body, "model": "llama-9"}) as resp:
        error = (await resp.json())["error"]
    assert resp.status == 404 and "claude-*" in error["message"]
