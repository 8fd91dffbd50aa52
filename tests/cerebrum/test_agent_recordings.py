"""The requests real coding agents sent (tests/data/wire/agents/, recorded from Codex CLI,
Claude Code and aider by record_agents.py, no model run) parse under both tiers' rules with
the wire packages, and have the shape later tests rely on. Pure and fast: no servers, no
agents.

A recorded body a parser refuses is a bug of the parser (the agent sent it): such a case is
an xfail(strict=True) naming the field, so that the fix shows.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cerebrum import anthropic, openai, responses
from cerebrum.anthropic.blocks import BILLING
from cerebrum.generation.errors import InvalidRequest
from cerebrum.generation.request import Request

AGENTS = Path(__file__).resolve().parents[1] / "data" / "wire" / "agents"
NAMES = ("codex", "codex_catalog", "claude_code", "aider")
RECORDS: dict[str, dict[str, Any]] = {
    name: json.loads((AGENTS / f"{name}.json").read_text()) for name in NAMES}
TIERS = ("backend", "orchestrator")
CAP = 32768  # max_tokens cap, as a 32k-context model's
PROMPT = "Add a docstring to hello.py"
SECRET_HEADERS = ("authorization", "x-api-key", "api-key", "cookie", "proxy-authorization")
MODEL_PATHS = ("/v1/responses", "/v1/messages", "/v1/messages/count_tokens",
               "/v1/chat/completions")

# (agent, index among its model requests) → why the parser refuses what the agent sent.
# Recorded requests a parser refuses, with why (an xfail that shows when it is fixed): none.
REFUSED: dict[tuple[str, int], str] = {}


def path_of(request: dict[str, Any]) -> str:
    return str(request["path"]).partition("?")[0]


def model_requests(name: str) -> list[dict[str, Any]]:
    """The agent's recorded requests to a model endpoint, in order."""
    return [r for r in RECORDS[name]["requests"] if path_of(r) in MODEL_PATHS]


def parse(request: dict[str, Any], tier: Any) -> Request:
    """A recorded request parsed by the wire package of its endpoint."""
    body = copy.deepcopy(request["body"])
    path = path_of(request)
    if path == "/v1/responses":
        return responses.parse(body, CAP, tier)
    if path == "/v1/messages":
        anthropic.check_headers(request["headers"])
        return anthropic.parse(body, tier)
    if path == "/v1/messages/count_tokens":
        anthropic.check_headers(request["headers"])
        return anthropic.parse_count_tokens(body, tier)
    assert path == "/v1/chat/completions"
    return openai.parse("chat", body, CAP, tier)


def _cases() -> list[Any]:
    out = []
    for name in NAMES:
        for index, request in enumerate(model_requests(name)):
            for tier in TIERS:
                why = REFUSED.get((name, index))
                marks = [pytest.mark.xfail(raises=InvalidRequest, strict=True, reason=why)] \
                    if why else []
                out.append(pytest.param(request, tier, marks=marks,
                                        id=f"{name}-{index}-{path_of(request)}-{tier}"))
    return out


@pytest.mark.parametrize(("request_", "tier"), _cases())
def test_recorded_request_parses(request_: dict[str, Any], tier: str) -> None:
    request = parse(request_, tier)
    assert request.model == request_["body"]["model"]
    assert request.turns


# ------------------------------------------------------------------- what was recorded


@pytest.mark.parametrize("name", NAMES)
def test_recording_says_how_it_was_made(name: str) -> None:
    record = RECORDS[name]
    assert record["agent"] == name
    assert record["version"] and record["command"] and record["prompt"] == PROMPT
    assert record["exit"] == 0
    assert 1 <= len(model_requests(name)) <= 3
    assert len(record["seen"]) >= len(record["requests"])


@pytest.mark.parametrize("name", NAMES)
def test_no_secret_is_recorded(name: str) -> None:
    for request in RECORDS[name]["requests"]:
        for header, value in request["headers"].items():
            if header.lower() in SECRET_HEADERS:
                assert value.endswith("<redacted>"), (header, value)


# ------------------------------------------------------------------------------- Codex


def test_codex_prompt_is_in_developer_turns() -> None:
    (request,) = model_requests("codex")
    body = request["body"]
    assert request["path"] == "/v1/responses"
    assert not body.get("instructions")  # Codex 0.171 sends its prompt as input items
    roles = [item.get("role") for item in body["input"]]
    assert roles == ["developer", "developer", "user", "user"]
    for tier in TIERS:
        parsed = parse(request, tier)
        assert parsed.turns[0].role in ("developer", "system")
        assert parsed.turns[0].text.startswith("You are a coding agent running in the Codex CLI")
        assert parsed.turns[1].role in ("developer", "system")
        assert "<permissions instructions>" in parsed.turns[1].text
        assert "<environment_context>" in parsed.turns[2].text
        assert parsed.turns[-1].role == "user" and parsed.turns[-1].text == PROMPT
        assert parsed.stream is True
        assert parsed.cache_key == body["prompt_cache_key"] == request["headers"]["session-id"]


def test_codex_tools_without_model_metadata() -> None:
    """Codex knows nothing of the model (fallback metadata): function tools, a namespace of
    its sub-agent functions and web search; no apply_patch (it edits through exec_command)."""
    (request,) = model_requests("codex")
    tools = request["body"]["tools"]
    assert Counter(t["type"] for t in tools) == {"function": 7, "namespace": 1,
                                                 "web_search": 1}
    functions = [t["name"] for t in tools if t["type"] == "function"]
    assert functions[:2] == ["exec_command", "write_stdin"]
    assert "apply_patch" not in json.dumps(tools)
    (namespace,) = (t for t in tools if t["type"] == "namespace")
    assert namespace["name"] == "multi_agent_v1"
    for tier in TIERS:
        parsed = parse(request, tier)
        assert [t.name for t in parsed.tools] == functions  # the others are dropped
        assert not any(t.freeform for t in parsed.tools)


def _without_tool_search(request: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(request)
    out["body"]["tools"] = [t for t in out["body"]["tools"] if t["type"] != "tool_search"]
    return out


def test_codex_catalog_offers_a_freeform_apply_patch() -> None:
    """With the model described (codex_catalog), Codex offers a free-form `apply_patch` (a
    Lark grammar) and asks for reasoning effort and verbosity; the rest of its body, without
    the refused `tool_search` tool (REFUSED), parses."""
    (request,) = model_requests("codex_catalog")
    body = request["body"]
    tools = body["tools"]
    assert Counter(t["type"] for t in tools) == {"function": 7, "custom": 1, "tool_search": 1,
                                                 "web_search": 1}
    (patch,) = (t for t in tools if t["type"] == "custom")
    assert patch["name"] == "apply_patch"
    assert patch["format"]["type"] == "grammar" and patch["format"]["syntax"] == "lark"
    assert patch["format"]["definition"].startswith("start: begin_patch hunk+ end_patch")
    assert body["reasoning"] == {"effort": "medium"} and body["text"] == {"verbosity": "low"}
    assert [item.get("role") for item in body["input"]] == ["developer", "developer", "user",
                                                            "user"]
    for tier in TIERS:
        parsed = parse(_without_tool_search(request), tier)
        assert [t.name for t in parsed.tools] == [t["name"] for t in tools
                                                  if t["type"] in ("function", "custom")]
        assert [t.name for t in parsed.tools if t.freeform] == ["apply_patch"]
        assert parsed.turns[0].role in ("developer", "system")
        assert parsed.turns[-1].text == PROMPT


# ------------------------------------------------------------------------------ Claude Code


def _claude_code() -> dict[str, Any]:
    (request,) = model_requests("claude_code")
    return request


def test_claude_code_headers() -> None:
    request = _claude_code()
    assert request["path"] == "/v1/messages?beta=true"
    headers = request["headers"]
    assert anthropic.check_headers(headers) == "<redacted>"  # its x-api-key
    assert headers["anthropic-version"] == "2023-06-01"
    assert "claude-code-20250219" in anthropic.betas(headers)


def test_claude_code_body() -> None:
    request = _claude_code()
    body = request["body"]
    assert body["stream"] is True and body["max_tokens"] == 32000
    assert len(body["tools"]) == 24
    assert all(set(t) == {"name", "description", "input_schema"} for t in body["tools"])
    assert {"Bash", "Edit", "Read", "Write"} <= {t["name"] for t in body["tools"]}
    assert len(json.dumps(body["tools"])) > 50_000
    assert [m["role"] for m in body["messages"]] == ["user", "system"]
    session = json.loads(body["metadata"]["user_id"])["session_id"]
    assert session == request["headers"]["X-Claude-Code-Session-Id"]
    for tier in TIERS:
        parsed = parse(request, tier)
        assert [t.name for t in parsed.tools] == [t["name"] for t in body["tools"]]
        # Its system message after the user's (the agent types) goes before it.
        assert [t.role for t in parsed.turns] == ["system", "system", "user"]
        assert parsed.turns[1].text == body["messages"][1]["content"]
        assert parsed.turns[2].text.endswith(PROMPT)
        assert parsed.cache_key == session
        assert parsed.stream is True and parsed.max_tokens == 32000


def _with_billing(request: dict[str, Any], cch: str) -> dict[str, Any]:
    out = copy.deepcopy(request)
    first = out["body"]["system"][0]
    first["text"] = f"{first['text']} cch={cch};"
    return out


def test_claude_code_billing_line_is_dropped() -> None:
    """The first system block is the billing line (this version sends no `cch=`; older ones,
    and Anthropic's own endpoint, a hash new on every request): parsing drops it, so
    requests differing only in it parse to the same system text."""
    request = _claude_code()
    system = request["body"]["system"]
    assert system[0]["text"].startswith(BILLING)
    assert "cc_version=" in system[0]["text"]
    rest = "\n\n".join(block["text"] for block in system[1:])
    for tier in TIERS:
        parsed = parse(request, tier)
        assert BILLING not in parsed.turns[0].text
        assert parsed.turns[0].text == rest
        one = parse(_with_billing(request, "a1b2c"), tier)
        other = parse(_with_billing(request, "9f8e7"), tier)
        assert one.turns == other.turns == parsed.turns


def test_claude_code_body_counts_tokens() -> None:
    """Claude Code sent no count_tokens request here; its body without the fields only
    /v1/messages takes is one, and counts the same conversation and tools."""
    request = _claude_code()
    counted = copy.deepcopy(request)
    counted["path"] = "/v1/messages/count_tokens?beta=true"
    for key in ("max_tokens", "stream", "metadata"):
        del counted["body"][key]
    for tier in TIERS:
        full, count = parse(request, tier), parse(counted, tier)
        assert count.turns == full.turns and count.tools == full.tools
        assert count.max_tokens is None


# ------------------------------------------------------------------------------------ aider


def test_aider_chat_request() -> None:
    (request,) = model_requests("aider")
    body = request["body"]
    assert request["path"] == "/v1/chat/completions"
    assert set(body) == {"model", "messages", "stream", "temperature"}
    assert body["stream"] is True and body["temperature"] == 0
    for tier in TIERS:
        parsed = parse(request, tier)
        assert parsed.turns[0].role == "system"
        assert [t.role for t in parsed.turns[1:]] == ["user", "assistant"] * 3 + ["user"]
        assert any('hello.py\n```\nprint("hello")\n```' in t.text for t in parsed.turns)
        assert parsed.turns[-1].text.startswith(PROMPT)
        assert "*file listing*" in parsed.turns[-1].text  # the whole edit format's rules
        assert parsed.stream is True and parsed.sampling.temperature == 0
        assert not parsed.tools


def test_aider_applied_the_stubs_whole_file_edit() -> None:
    assert RECORDS["aider"]["hello_py_after"] == '"""Say hello."""\nprint("hello")\n'
