"""Orchestrator pure parts: settings, request validation, routing, circuit breaker, stats."""

from __future__ import annotations

from pathlib import Path

import pytest

from cerebrum.config import ConfigError
from cerebrum.openai import InvalidRequest
from pi_appliance.errors import NotFound
from pi_appliance.settings import BreakerPolicy, load_settings
from pi_appliance.stats import Stats, percentile
from pi_appliance.upstream import routing
from pi_appliance.upstream.breaker import Breaker, State
from pi_appliance.wire import protocol


class Clock:
    """A clock the test steers."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_default_settings_route_both_families_to_the_local_backend():
    s = load_settings(None, {})
    assert (s.host, s.port, s.max_concurrent) == ("127.0.0.1", 7000, 2)
    assert [r.name for r in s.routes] == ["qwen", "codellama"]
    assert s.route("codellama").languages == ("rust", "c", "cpp")
    assert s.backend("local").url == "http://127.0.0.1:9000"


def test_settings_file_backends_routes_and_env(tmp_path):
    key = tmp_path / "vps.key"
    key.write_text("upstream-secret\n")
    cfg = tmp_path / "orch.toml"
    cfg.write_text(f"""
max_concurrent = 3
default_route = "b"
[timeouts]
first_token = 5
[breaker]
failures = 2
[[backends]]
name = "vps"
url = "http://vps.tailnet:9000/"
api_key_file = "{key}"
[[backends]]
name = "spare"
url = "http://127.0.0.1:9001"
tokenize = false
[[routes]]
name = "a"
model = "m-a"
backends = ["vps", "spare"]
languages = ["python"]
[[routes]]
name = "b"
model = "m-b"
backends = ["spare"]
""")
    s = load_settings(cfg, {"CEREBRUM_ORCHESTRATOR_PORT": "7100"})
    assert s.port == 7100 and s.max_concurrent == 3 and s.default_route == "b"
    assert s.timeouts.first_token == 5.0 and s.breaker.failures == 2
    vps = s.backend("vps")
    assert vps.url == "http://vps.tailnet:9000" and vps.api_key == "upstream-secret"
    assert "upstream-secret" not in repr(s)
    assert s.route("a").backends == ("vps", "spare")
    assert s.route("a").tokenizer == "any"
    assert load_settings(None, {}).routes[0].tokenizer == "qwen2"


@pytest.mark.parametrize("text, fragment", [
    ("max_concurrent = 0", "max_concurrent: must be between"),
    ("[timeouts]\nfirst_token = 0", "timeouts.first_token"),
    ("[breaker]\nfailure_rate = 2", "breaker.failure_rate"),
    ("[[backends]]\nname = 'x'", "backends\\[0\\].url: required"),
    ("[[backends]]\nname = 'x'\nurl = 'ftp://x'", "must start with http"),
    ("[[routes]]\nname='r'\nmodel='m'\nbackends=['nope']", "unknown backend 'nope'"),
    ("[[routes]]\nname='r'\nmodel='m'\nbackends=['local']\nlanguages=['cobol']",
     "unknown language 'cobol'"),
    ("default_route = 'zzz'", "default_route: no route"),
    ("[pipeline]\ntop_k = 0", "pipeline.top_k"),
    ("timeouts = 3", "timeouts: expected a table"),
    ("[[routes]]\nname='r'\nmodel='m'\nbackends=['local']\ntokenizer='gpt2'",
     "routes\\[0\\].tokenizer: must be one of"),
])
def test_bad_settings_name_the_key(tmp_path, text, fragment):
    path = Path(tmp_path / "o.toml")
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(path, {})


def test_request_parsing_keeps_options_and_extras():
    req = protocol.parse("chat", {
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u1"},
                     {"role": "assistant", "content": None}, {"role": "user", "content": "u2"}],
        "temperature": 0.1, "stop": "x", "seed": 4, "max_tokens": 9, "language": "rust",
        "cerebrum": {"context": "raw"}, "stream": True}, 100)
    assert req.content == "u2" and req.language == "rust" and req.context == "raw"
    assert req.options == {"temperature": 0.1, "stop": "x", "seed": 4}  # as sent
    assert req.max_tokens == 9 and req.model == "auto"


@pytest.mark.parametrize("body, fragment", [
    ({"messages": [{"role": "system", "content": "only"}]}, "at least one user message"),
    ({"messages": [{"role": "user", "content": "x"}], "language": "cobol"}, "'language'"),
    ({"messages": [{"role": "user", "content": "x"}], "cerebrum": {"context": "x"}},
     "'cerebrum'"),
    ({"messages": [{"role": "user", "content": "x"}], "model": ""}, "'model'"),
])
def test_request_parsing_errors(body, fragment):
    with pytest.raises(InvalidRequest, match=fragment):
        protocol.parse("chat", body, 100)


def test_routing_pinned_model_then_language_then_default():
    s = load_settings(None, {})
    d = routing.choose(s, model="auto", language="rust", language_reason="fence")
    assert d.route.name == "codellama" and "rust" in d.reason
    d = routing.choose(s, model="auto", language=None, language_reason="no cues")
    assert d.route.name == "qwen" and "default" in d.reason
    d = routing.choose(s, model="qwen2.5-coder-1.5b-instruct", language="rust",
                       language_reason="fence")
    assert d.route.name == "qwen" and "pinned" in d.reason
    with pytest.raises(NotFound, match="'llama-9' is not routed"):
        routing.choose(s, model="llama-9", language=None, language_reason="")


def test_breaker_opens_after_consecutive_failures_and_probes_after_cooldown():
    clock = Clock()
    b = Breaker(BreakerPolicy(failures=3, cooldown=10, window=100), clock)
    for _ in range(2):
        assert b.acquire()
        b.failure()
    assert b.state is State.CLOSED
    assert b.acquire()
    b.failure()
    assert b.state is State.OPEN and not b.acquire()
    clock.now += 4
    assert b.retry_after() == 6
    clock.now += 6
    assert b.acquire() and b.state is State.HALF_OPEN and b.is_probe
    assert not b.acquire()  # one probe at a time
    b.failure()
    assert b.state is State.OPEN  # a failed probe re-opens
    clock.now += 10
    assert b.acquire()
    b.success()
    assert b.state is State.CLOSED and b.acquire()


def test_breaker_opens_on_failure_rate_over_the_window():
    b = Breaker(BreakerPolicy(failures=100, failure_rate=0.5, window=4), Clock())
    for failed in (False, True, False, True):  # judged at each failure: 2 of 4
        (b.failure if failed else b.success)()
    assert b.state is State.OPEN


def test_breaker_release_lets_another_probe_through():
    clock = Clock()
    b = Breaker(BreakerPolicy(failures=1, cooldown=1), clock)
    b.failure()
    clock.now += 1
    assert b.acquire()
    b.release()
    assert b.acquire()


def test_stats_percentiles_are_bounded():
    assert percentile([], 50) is None
    assert percentile([3, 1, 2], 50) == 2
    s = Stats(window=3)
    for v in range(10):
        s.observe(s.ttft_ms, v)
    assert list(s.ttft_ms) == [7, 8, 9]
    assert s.snapshot()["ttft_ms"]["p99"] == 9
