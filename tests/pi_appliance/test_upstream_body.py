"""What the proxy sends a backend: the request body field for field, but for the route's model
and streaming, and only its own headers (the request id, the backend's key)."""

from __future__ import annotations

import dataclasses
import time

from conftest import base_url, orchestrator_settings
from faulty import Faulty

from pi_appliance.metrics import Metrics
from pi_appliance.settings import Backend, Timeouts
from pi_appliance.upstream.client import new_session
from pi_appliance.upstream.proxy import Proxy

# Every kind of field a client may send, nested shapes included.
PAYLOAD = {
    "messages": [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"c\": 3}"},
    ],
    "tools": [{"type": "function", "function": {
        "name": "weather", "parameters": {"type": "object",
                                          "properties": {"city": {"type": "string"}}}}}],
    "tool_choice": {"type": "function", "function": {"name": "weather"}},
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {
        "name": "w", "strict": True, "schema": {"type": "object"}}},
    "logprobs": True, "top_logprobs": 2, "n": 2, "logit_bias": {"15": -100},
    "presence_penalty": 0.5, "frequency_penalty": 0.25, "seed": 7, "stop": ["\n\n"],
    "stream_options": {"include_usage": True}, "max_tokens": 8, "temperature": 0.0,
    "top_p": 0.9, "user": "u-1", "speculative": False, "some_engine_extension": [1, 2],
}


async def test_every_field_reaches_the_backend_unchanged_with_only_its_own_headers(
        aiohttp_server):
    upstream = Faulty()
    url = base_url(await aiohttp_server(upstream.app()))
    settings = orchestrator_settings(("f", url), model="the-model")
    settings = dataclasses.replace(settings, backends=(Backend("f", url, api_key="key-f"),))
    session = new_session(Timeouts())
    try:
        proxy = Proxy(settings, lambda: session, Metrics(), time.monotonic)
        opened = await proxy.open(settings.route("qwen"), "chat",
                                  {**PAYLOAD, "model": "auto"}, "req-42")
        chunks = [opened.first, *[c async for c in opened.rest]]
    finally:
        await session.close()
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert upstream.bodies == [{**PAYLOAD, "model": "the-model", "stream": True}]
    headers = upstream.seen_headers[0]
    assert headers["X-Request-ID"] == "req-42"
    assert headers["Authorization"] == "Bearer key-f"
    assert proxy.balancer.outstanding("f") == 0
