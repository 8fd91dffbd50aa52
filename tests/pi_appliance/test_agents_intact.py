"""Each coding agent's real recorded first request (tests/data/wire/agents/) sent through the
orchestrator: the upstream receives its system prompt (instructions, developer messages),
its tools and its conversation byte for byte — the context pipeline never rewrites an
agent's prompt. The upstream is a recording stand-in answering in each format with the
project's own renderers."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import base_url, orchestrator_settings

from cerebrum import anthropic, openai, responses
from cerebrum.generation.events import Finish, TextDelta, Usage
from cerebrum.jsonwire import sse_event

AGENTS = Path(__file__).resolve().parents[1] / "data" / "wire" / "agents"
ANSWER = "hello.py\n```\n\"\"\"Say hello.\"\"\"\nprint('hi')\n```\n"


class Recorder:
    """Records what it is sent; answers each format's stream with our renderers."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[dict[str, Any]]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        for path in ("/v1/responses", "/v1/messages", "/v1/chat/completions"):
            app.router.add_post(path, self.answer)
        return app

    async def answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.setdefault(request.path, []).append(body)
        events = [TextDelta(ANSWER), Finish("stop", Usage(100, 20, 0))]
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if request.path == "/v1/messages":
            render = anthropic.Render("msg_1", body["model"], 100)
            for name, payload in [*render.start(), *(p for e in events
                                                     for p in render.stream(e))]:
                await resp.write(anthropic.frame(name, payload))
        elif request.path == "/v1/responses":
            internal = responses.parse(body, 32768, "backend")
            render = responses.Render(responses.Envelope.new(internal, "r1", body["model"]))
            for name, payload in [*render.start(), *(p for e in events
                                                     for p in render.stream(e))]:
                await resp.write(responses.sse(name, payload))
        else:
            render = openai.render.Render(openai.Envelope.new("chat", "r1", body["model"]),
                                          include_usage=True)
            for payload in (p for e in events for p in render.stream(e)):
                await resp.write(sse_event(payload))
        return resp


def _recorded(name: str) -> dict[str, Any]:
    requests = json.loads((AGENTS / f"{name}.json").read_text())["requests"]
    return next(r for r in requests if r["method"] == "POST" and "count_tokens" not in r["path"])


@pytest.fixture
async def through(aiohttp_server, start_orchestrator) -> tuple[Recorder, str]:
    recorder = Recorder()
    upstream = base_url(await aiohttp_server(recorder.app()))
    settings = orchestrator_settings(("vps", upstream), model="qwen2.5-coder-0.5b-instruct",
                                     max_tokens_cap=32768)
    return recorder, await start_orchestrator(settings)


@pytest.mark.parametrize("name", ["codex", "codex_catalog", "claude_code", "aider"])
async def test_an_agents_prompt_and_tools_reach_the_upstream_as_sent(through, http, name):
    recorder, url = through
    request = _recorded(name)
    sent = copy.deepcopy(request["body"])
    headers = {k: v for k, v in request["headers"].items()
               if k.lower().startswith(("anthropic-", "content-type"))}
    async with http.post(url + request["path"], json=sent, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        await resp.read()
    path = request["path"].partition("?")[0]
    (got,) = recorder.bodies[path]
    if path == "/v1/chat/completions":  # aider: the conversation as it came, byte for byte
        assert got["messages"] == sent["messages"]
        return
    # The agents' formats go on as the client sent them, the route's model in.
    assert {k: v for k, v in got.items() if k != "model"} == \
        {k: v for k, v in sent.items() if k != "model"}
    assert json.dumps(got.get("system") or got.get("input"), ensure_ascii=False) == \
        json.dumps(sent.get("system") or sent.get("input"), ensure_ascii=False)
    assert got["tools"] == sent["tools"]
