"""Shared fixtures: isolated XDG/env, model files, and real backends on ephemeral ports."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

from tiny_gguf import write_tiny_llama

from vps_appliance import models
from vps_appliance.engine.slots import Loader, load_llama
from vps_appliance.http.app import make_app
from vps_appliance.settings import ModelSpec, Sampling, Settings

# Property tests draw the same examples on every run (derandomized, no example database):
# `make test` must not pass or fail by the luck of the draw. Explore with
# `pytest --hypothesis-seed=N` or HYPOTHESIS_PROFILE=explore.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# Where `make setup` assembled the packaged models, read before tests isolate XDG dirs.
REAL_MODEL_CACHE = models.default_cache_dir()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point XDG dirs at tmp_path and drop any CEREBRUM_* settings of the developer."""
    for key in list(os.environ):
        if key.startswith("CEREBRUM_") or key.startswith("LISTEN_"):
            monkeypatch.delenv(key)
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight 2-layer llama GGUF (~0.5 MB)."""
    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny.gguf")


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The real SmolLM2-135M-Instruct, verified against its pinned sha256."""
    return models.resolve("smollm2-135m-instruct", REAL_MODEL_CACHE)


@pytest.fixture(scope="session")
def qwen_path() -> Path:
    """The packaged Qwen2.5-Coder-0.5B-Instruct (it has FIM and repo-level tokens)."""
    return models.resolve("qwen2.5-coder-0.5b-instruct", REAL_MODEL_CACHE)


@pytest.fixture(scope="session")
def qwen_1_5b_path() -> Path:
    """The packaged Qwen2.5-Coder-1.5B-Instruct, the default model (it drives the agents)."""
    return models.resolve("qwen2.5-coder-1.5b-instruct", REAL_MODEL_CACHE)


def spec(name: str, path: Path, **kw: object) -> ModelSpec:
    """A manifest entry for tests: 2 threads, deterministic sampling unless overridden."""
    kw.setdefault("n_ctx", 2048)
    kw.setdefault("sampling", Sampling(temperature=0.0, max_tokens=64))
    return ModelSpec(name=name, path=path, n_threads=2, **kw)  # type: ignore[arg-type]


Start = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def start_backend(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Start:
    """Start a real backend on 127.0.0.1:<ephemeral> for the given manifest."""

    async def start(*specs: ModelSpec, loader: Loader = load_llama,
                    **settings: object) -> TestServer:
        app = make_app(Settings(models=specs, **settings), loader=loader)  # type: ignore[arg-type]
        # TestServer runs with handler_cancellation=True, as serve() does.
        return await aiohttp_server(app)

    return start


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client (no keep-alive surprises between tests)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield session


async def metric(http: aiohttp.ClientSession, base: str, name: str, **labels: str) -> float:
    """Read one sample of a Prometheus metric from a running backend (0 when absent)."""
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", re.M)
    for match in pattern.finditer(text):
        got = ",".join(sorted((match.group(1) or "").split(","))) if match.group(1) else ""
        if got == want:
            return float(match.group(2))
    return 0.0


def base_url(server: TestServer) -> str:
    """http://127.0.0.1:<port> of a test server."""
    return str(server.make_url("")).rstrip("/")


async def sse_events(resp: aiohttp.ClientResponse) -> AsyncIterator[dict | str]:
    """Yield each `data:` payload of an SSE response: parsed JSON, or the string "[DONE]"."""
    import json

    from cerebrum import sse

    async for raw in resp.content:
        payload = sse.parse_data(raw)  # MalformedStream for a line that is not SSE
        if payload is not None:
            yield payload if payload == sse.DONE else json.loads(payload)


class SteeredClock:
    """A monotonic clock the test moves by hand (breaker cooldowns, idle time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        import time

        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
async def start_orchestrator() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Start real orchestrators (uvicorn, 127.0.0.1:<ephemeral>); returns their base URLs."""
    import asyncio
    import socket

    import uvicorn

    from pi_appliance.http.app import create_app
    from pi_appliance.http.server import uvicorn_config

    servers: list[tuple[uvicorn.Server, asyncio.Task]] = []

    async def start(settings, clock=None) -> str:
        import time

        app = create_app(settings, clock=clock or time.monotonic)
        config = uvicorn_config(app, timeout_graceful_shutdown=2)
        server = uvicorn.Server(config)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        task = asyncio.create_task(server.serve(sockets=[sock]))
        async with asyncio.timeout(30):
            while not server.started:
                assert not task.done(), "uvicorn exited during start-up"
                await asyncio.sleep(0.01)
        servers.append((server, task))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, task in servers:
        server.should_exit = True
        await task


def orchestrator_settings(*backends: tuple[str, str], **overrides: object):
    """Settings with the given (name, url) backends, both routes over all of them."""
    from pi_appliance.settings import Backend, Route, Settings

    names = tuple(name for name, _ in backends)
    model = overrides.pop("model", "tiny")
    routes = (Route("qwen", model, names, ("python", "javascript", "typescript")),
              Route("codellama", model, names, ("rust", "c", "cpp")))
    return Settings(backends=tuple(Backend(name, url) for name, url in backends),
                    routes=routes, default_route="qwen", **overrides)  # type: ignore[arg-type]


QWEN = "qwen2.5-coder-0.5b-instruct"


def qwen_stack_settings(backend: str, key: str | None = None, model: str = QWEN,
                        n_ctx: int = 2048):
    """An orchestrator over one backend serving Qwen2.5-Coder (`model`, at `n_ctx`), with
    the backend's key (if any) and requiring the same of its own clients."""
    import dataclasses

    from pi_appliance.settings import Backend

    settings = orchestrator_settings(("vps", backend), model=model,
                                     api_keys=(key,) if key else ())
    return dataclasses.replace(
        settings, backends=(Backend("vps", backend, api_key=key),),
        routes=tuple(dataclasses.replace(r, n_ctx=n_ctx, tokenizer="qwen2")
                     for r in settings.routes))


@pytest.fixture
async def qwen_tiers(start_backend, start_orchestrator, qwen_path) -> dict[str, str]:
    """{"backend": url, "orchestrator": url}: Qwen2.5-Coder-0.5B (it has FIM tokens) in a
    real backend and a real orchestrator in front of it, no keys."""
    backend = base_url(await start_backend(spec(QWEN, qwen_path, sampling=Sampling(
        temperature=0.0, max_tokens=48))))
    return {"backend": backend,
            "orchestrator": await start_orchestrator(qwen_stack_settings(backend))}


@pytest.fixture
async def qwen_llama_server(qwen_path, http) -> AsyncIterator[str]:
    """llama.cpp's own llama-server with the same Qwen file (skips where it did not build)."""
    from llama_servers import LlamaServer

    server = LlamaServer(qwen_path)
    try:
        await server.start(http)
        yield server.url
    finally:
        server.stop()
