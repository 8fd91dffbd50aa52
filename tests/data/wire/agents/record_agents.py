"""Record the requests the real coding agents send (codex.json, codex_catalog.json,
claude_code.json, aider.json).

Each agent runs once, non-interactively, on a throw-away git repository holding one file
(`hello.py`), asked to "Add a docstring to hello.py", against a stand-in server on
127.0.0.1:0 that keeps every request (method, path with its query, headers with key values
replaced by `<redacted>`, body) and answers a minimal valid reply in the request's format, so
the agent finishes its turn:

- `POST /v1/responses` (Codex CLI): a Responses stream of one message, "Done.", rendered by
  `cerebrum.responses.Render`;
- `POST /v1/messages` (Claude Code, as `/v1/messages?beta=true`): an Anthropic stream (or
  body) of one text block, "Done.", rendered by `cerebrum.anthropic.Render`;
  `/v1/messages/count_tokens`: `{"input_tokens": 10}`;
- `POST /v1/chat/completions` (aider): a chat stream (or body) rendered by
  `cerebrum.openai`, whose text is a whole-file edit in aider's `whole` format;
- `GET /v1/models`: one model.

Codex runs twice: `codex` as configured with a provider and a model name only (Codex knows
nothing of the model and uses its fallback metadata: no `apply_patch` tool, edits through
`exec_command`), and `codex_catalog` with a model catalog (`model_catalog_json`) that
describes the model as Codex's bundled gpt-5.5 entry (a free-form `apply_patch` tool,
reasoning effort and verbosity), the way to have Codex use `apply_patch` with a local model.

No model runs. At most the first 3 requests of each method and path (the query left out) are
kept; `seen` lists every request the agent made. The temporary directory the repository and
the agent's home live in is written as /tmp/cerebrum-agents, so that re-recording changes
only what the agent changed. The agents are run as tests/agent_clients.py says: found in
.agents/, where `make test`'s set-up installs them, or where CODEX, CLAUDE and AIDER say.

    .venv/bin/python tests/data/wire/agents/record_agents.py [codex] [codex_catalog] \
        [claude_code] [aider]
"""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

HERE = Path(__file__).parent
ROOT = HERE.parents[3]
sys.path.insert(0, str(ROOT / "tests"))

import agent_clients  # noqa: E402  (tests/: how the agents are run, shared with their tests)
from agent_clients import INHERITED, Setup  # noqa: E402

from cerebrum import anthropic, openai, responses  # noqa: E402
from cerebrum.generation.events import Finish, TextDelta, Usage  # noqa: E402

MODEL = "qwen2.5-coder-0.5b-instruct"
PROMPT = "Add a docstring to hello.py"
HELLO = 'print("hello")\n'
ANSWER = "Done."
WHOLE_EDIT = 'hello.py\n```\n"""Say hello."""\nprint("hello")\n```\n'
TEMPLATE = "gpt-5.5"  # codex_catalog: the bundled model MODEL is described as
CONTEXT = 32768
KEEP = 3  # requests kept per method and path
TIMEOUT = 120.0  # seconds an agent may take
STABLE_ROOT = "/tmp/cerebrum-agents"
SECRET_HEADERS = ("authorization", "x-api-key", "api-key", "cookie", "proxy-authorization")
MODEL_PATHS = ("/v1/responses", "/v1/messages", "/v1/chat/completions")
USAGE = Usage(prompt_tokens=10, completion_tokens=2, cached_tokens=0)

ABOUT = ("Recorded from the real agent by tests/data/wire/agents/record_agents.py: the agent "
         "ran once, non-interactively, on a git repository of one file (hello.py) with the "
         "prompt below, against a stand-in server answering \"Done.\" (aider: a whole-file "
         "edit). Headers' key values are <redacted>; the temporary directory is written as "
         f"{STABLE_ROOT}; at most {KEEP} requests per method and path are kept, `seen` lists "
         "them all.")


def _redacted(name: str, value: str) -> str:
    if name.lower() not in SECRET_HEADERS:
        return value
    scheme, _, rest = value.partition(" ")
    return f"{scheme} <redacted>" if rest and scheme.lower() in ("bearer", "basic") \
        else "<redacted>"


def _decoded(raw: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding == "zstd":
        import zstandard  # only when an agent compresses its bodies

        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    return raw


def _body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------- the replies


def _events(text: str) -> list[Any]:
    return [TextDelta(text), Finish("stop", USAGE)]


def _sse_response(chunks: list[bytes]) -> web.Response:
    return web.Response(body=b"".join(chunks), content_type="text/event-stream",
                        headers={"Cache-Control": "no-cache"})


def responses_reply(body: Any, rid: str) -> web.Response:
    """A Responses stream (or body) of one message saying "Done."."""
    model = body.get("model", MODEL) if isinstance(body, dict) else MODEL
    try:
        env = responses.Envelope.new(responses.parse(body, 32768), rid, model)
    except (responses.InvalidRequest, responses.InvalidBody):
        env = responses.Envelope(rid, model, int(time.time()), frozenset(), ())
    render = responses.Render(env)
    if isinstance(body, dict) and body.get("stream") is True:
        pairs = [pair for event in _events(ANSWER) for pair in render.stream(event)]
        return _sse_response([responses.sse(name, payload) for name, payload in pairs])
    for event in _events(ANSWER):
        render.collect(event)
    return web.json_response(render.body())


def messages_reply(body: Any, rid: str) -> web.Response:
    """An Anthropic stream (or body) of one text block saying "Done."."""
    model = body.get("model", MODEL) if isinstance(body, dict) else MODEL
    render = anthropic.Render(f"msg_{rid}", model, input_tokens=USAGE.prompt_tokens)
    if isinstance(body, dict) and body.get("stream") is True:
        events = [pair for event in _events(ANSWER) for pair in render.stream(event)]
        return _sse_response([anthropic.frame(name, payload) for name, payload in events])
    for event in _events(ANSWER):
        render.collect(event)
    return web.json_response(render.body())


def chat_reply(body: Any, rid: str) -> web.Response:
    """A chat completion (stream or body) whose text is aider's whole-file edit."""
    from cerebrum.openai.render import Render

    model = body.get("model", MODEL) if isinstance(body, dict) else MODEL
    options = body.get("stream_options") if isinstance(body, dict) else None
    usage = isinstance(options, dict) and options.get("include_usage") is True
    render = Render(openai.Envelope.new("chat", rid, model), include_usage=usage)
    if isinstance(body, dict) and body.get("stream") is True:
        payloads = [p for event in _events(WHOLE_EDIT) for p in render.stream(event)]
        return _sse_response([openai.sse(p) for p in payloads])
    for event in _events(WHOLE_EDIT):
        render.collect(event)
    return web.json_response(render.body())


def models_reply() -> web.Response:
    return web.json_response({"object": "list", "data": [
        {"id": MODEL, "object": "model", "created": 0, "owned_by": "cerebrum"}]})


# ------------------------------------------------------------------------------ the stub


class Stub:
    """The stand-in server: keeps what it is sent, answers each format's least reply."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.kept: list[dict[str, Any]] = []
        self.counts: Counter[tuple[str, str]] = Counter()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        raw = _decoded(raw, request.headers.get("Content-Encoding", "").strip().lower())
        body = _body(raw)
        self.seen.append({"method": request.method, "path": request.path_qs,
                          "bytes": len(raw)})
        key = (request.method, request.path)
        self.counts[key] += 1
        if self.counts[key] <= KEEP:
            self.kept.append({"method": request.method, "path": request.path_qs,
                              "headers": {k: _redacted(k, v) for k, v in
                                          request.headers.items()},
                              "body": body})
        rid = f"rec{len(self.seen)}"
        path = request.path.rstrip("/")
        if request.method == "GET" and path == "/v1/models":
            return models_reply()
        if request.method != "POST":
            return web.json_response({"error": "not found"}, status=404)
        if path == "/v1/messages/count_tokens":
            return web.json_response(anthropic.count_tokens_body(10))
        if path == "/v1/responses/input_tokens":
            return web.json_response(responses.input_tokens_body(10))
        replies: dict[str, Callable[[Any, str], web.Response]] = {
            "/v1/responses": responses_reply, "/v1/messages": messages_reply,
            "/v1/chat/completions": chat_reply}
        if path in replies:
            return replies[path](body, rid)
        return web.json_response({"error": "not found"}, status=404)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


# ---------------------------------------------------------------------------- the agents


def codex(root: Path, repo: Path, port: int) -> Setup:
    """Codex CLI's `exec` (non-interactive), on a provider of its own at the stub."""
    return agent_clients.codex(root, repo, f"http://127.0.0.1:{port}", MODEL, PROMPT)


def _catalog(binary: str, env: dict[str, str], path: Path) -> None:
    """A model catalog naming MODEL: Codex's bundled TEMPLATE entry under MODEL's name, with
    MODEL's context and text input only, so that Codex treats it as that model (a free-form
    `apply_patch` tool, reasoning and verbosity settings) instead of its fallback."""
    out = subprocess.run([binary, "debug", "models", "--bundled"], env=env, check=True,
                         capture_output=True, text=True, timeout=60)
    template = next(m for m in json.loads(out.stdout)["models"] if m["slug"] == TEMPLATE)
    model = template | {"slug": MODEL, "display_name": MODEL, "description": "Cerebrum",
                        "upgrade": None, "context_window": CONTEXT,
                        "max_context_window": CONTEXT, "input_modalities": ["text"],
                        "additional_speed_tiers": [], "service_tiers": []}
    path.write_text(json.dumps({"models": [model]}))


def codex_catalog(root: Path, repo: Path, port: int) -> Setup:
    """Codex as `codex`, told by a model catalog what MODEL is (`_catalog`)."""
    setup = codex(root, repo, port)
    catalog = root / "codex-home" / "models.json"
    _catalog(setup.argv[0], setup.env, catalog)
    config = root / "codex-home" / "config.toml"
    config.write_text(f'model_catalog_json = "{catalog}"\n' + config.read_text())
    setup.files["$CODEX_HOME/config.toml"] = config.read_text()
    setup.files["$CODEX_HOME/models.json"] = (
        f"`codex debug models --bundled`'s {TEMPLATE!r} entry with slug and display_name "
        f"{MODEL!r}, upgrade null, context_window and max_context_window {CONTEXT}, "
        "input_modalities [\"text\"], no service or speed tiers")
    return setup


def claude_code(root: Path, repo: Path, port: int) -> Setup:
    return agent_clients.claude_code(root, repo, f"http://127.0.0.1:{port}", MODEL, PROMPT)


def aider(root: Path, repo: Path, port: int) -> Setup:
    return agent_clients.aider(root, repo, f"http://127.0.0.1:{port}", MODEL, PROMPT, "test",
                               "hello.py")


AGENTS: dict[str, Callable[[Path, Path, int], Setup]] = {
    "codex": codex, "codex_catalog": codex_catalog, "claude_code": claude_code,
    "aider": aider}


def _shown(binary: str) -> str:
    """The agent's binary relative to the repository when it lies in it."""
    path = Path(binary)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else binary


def _stable(value: Any, root: str) -> Any:
    """`value` with the temporary directory written as STABLE_ROOT."""
    return json.loads(json.dumps(value).replace(root, STABLE_ROOT))


async def record(name: str) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="cerebrum-agents-"))
    stub = Stub()
    await stub.start()
    try:
        (root / "home").mkdir()
        repo = agent_clients.repository(root, {"hello.py": HELLO}, "hello")
        setup = AGENTS[name](root, repo, stub.port)
        process = await asyncio.create_subprocess_exec(
            *setup.argv, cwd=repo, env=setup.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
            status: int | str = process.returncode if process.returncode is not None else "?"
        except TimeoutError:
            process.kill()
            output, _ = await process.communicate()
            status = f"killed after {TIMEOUT:.0f} s"
        text = output.decode("utf-8", errors="replace")
        print(f"--- {name} ({setup.version}): exit {status}, {len(stub.seen)} requests\n"
              f"{text[-3000:]}", file=sys.stderr)
        edited = (repo / "hello.py").read_text()
        shown_env = {k: v for k, v in setup.env.items() if k not in INHERITED}
        port = str(stub.port)
        out = {"about": ABOUT, "agent": name, "version": setup.version,
               "command": [_shown(setup.argv[0]), *setup.argv[1:]], "env": shown_env,
               "files": setup.files, "prompt": PROMPT, "cwd": str(repo), "exit": status,
               "hello_py_after": edited, "seen": stub.seen, "requests": stub.kept}
        out = _stable(out, str(root))
        return json.loads(json.dumps(out).replace(f"127.0.0.1:{port}", "127.0.0.1:PORT"))
    finally:
        await stub.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    names = sys.argv[1:] or list(AGENTS)
    for name in names:
        if name not in AGENTS:
            raise SystemExit(f"unknown agent {name!r}: one of {', '.join(AGENTS)}")
    for name in names:
        out = asyncio.run(record(name))
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
        models = sum(r["path"].split("?")[0] in MODEL_PATHS for r in out["requests"])
        print(f"{name}: {len(out['seen'])} requests seen, {models} model requests kept "
              f"→ {path}")


if __name__ == "__main__":
    main()
