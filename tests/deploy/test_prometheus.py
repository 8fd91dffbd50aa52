"""deploy/prometheus/: the scrape config and the alert rules pass promtool (config, rules, the
rules' unit tests, one per alert), name only what the services export, as do the Grafana
dashboard's queries, and a real Prometheus scrapes a real backend (SmolLM2) and orchestrator on
loopback with the shipped jobs (and their API keys) and answers PromQL about both.

Debian's `prometheus` package gives promtool and prometheus (`make setup` installs it where apt
is usable); without them these tests skip.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import base_url, orchestrator_settings, spec
from metric_names import all_exported, cerebrum_names

from pi_appliance.settings import Backend

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "cerebrum-rules.yml"
RULE_TESTS = PROMETHEUS_DIR / "cerebrum-rules.test.yml"
DASHBOARD = ROOT / "nix" / "grafana" / "cerebrum.json"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
ALERTS = {"CerebrumOrchestratorDown", "CerebrumBackendDown", "CerebrumBreakerOpen",
          "CerebrumShedding", "CerebrumQueueFull", "CerebrumTTFTHigh", "CerebrumPipelineSlow",
          "CerebrumPipelineTimeouts"}

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is missing (Debian's prometheus package; make setup)")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is missing (Debian's prometheus package; make setup)")


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def config_for(tmp_path: Path, targets: dict[str, str], keys: dict[str, str],
               interval: str | None = None) -> Path:
    """The shipped prometheus.yml with its targets, credentials files (and, for a test's
    patience, scrape interval) replaced; the shipped rules file by its absolute path."""
    config = yaml.safe_load(CONFIG.read_text())
    config["rule_files"] = [str(RULES)]
    for job in config["scrape_configs"]:
        name = job["job_name"]
        job["static_configs"] = [{"targets": [targets[name]]}]
        key_file = tmp_path / f"{name}.key"
        key_file.write_text(keys[name] + "\n")
        job["authorization"]["credentials_file"] = str(key_file)
        if interval:
            job["scrape_interval"] = interval
            job["scrape_timeout"] = interval
    if interval:
        config["global"]["evaluation_interval"] = interval
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_every_alert_the_issue_names_is_a_rule():
    assert {r["alert"] for r in rules()} == ALERTS
    for rule in rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_rules_read_only_exported_metrics():
    used = set().union(*(cerebrum_names(r["expr"]) for r in rules()))
    assert used and used - all_exported() == set()


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for case in test["alert_rule_test"]]
    firing = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert firing == ALERTS and quiet == ALERTS


@needs_promtool
def test_shipped_config_is_valid(tmp_path: Path):
    # As shipped, its credentials files exist only on the host: syntax only (as NixOS checks).
    proc = promtool("check", "config", "--syntax-only", str(CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # In full, with the credentials files present and the rules loaded.
    config = config_for(tmp_path, {"cerebrum-orchestrator": "127.0.0.1:7000",
                                   "cerebrum-backend": "127.0.0.1:9000"},
                        {"cerebrum-orchestrator": "k1", "cerebrum-backend": "k2"})
    proc = promtool("check", "config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 8 rules found" in proc.stdout


@needs_promtool
def test_rules_are_valid():
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


@needs_promtool
def test_rule_unit_tests_pass():
    proc = promtool("test", "rules", RULE_TESTS.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@needs_promtool
def test_a_broken_rule_fails_its_unit_test(tmp_path: Path):
    """The unit tests can fail: with the breaker alert on half-open (1) instead of open (2)."""
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    (tmp_path / RULES.name).write_text(RULES.read_text().replace(
        "(cerebrum_orchestrator_breaker_state) == 2", "(cerebrum_orchestrator_breaker_state) >= 1"))
    proc = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert proc.returncode != 0
    assert "alertname: CerebrumBreakerOpen, time: 3m30s" in proc.stdout + proc.stderr


def test_dashboard_queries_read_only_exported_metrics():
    exprs = dashboard_exprs()
    assert exprs
    assert set().union(*(cerebrum_names(e) for e in exprs)) - all_exported() == set()


@needs_promtool
def test_dashboard_queries_parse(tmp_path: Path):
    """Each dashboard query as a recording rule: promtool parses every expression."""
    exprs = dashboard_exprs()
    records = [{"record": f"cerebrum:dashboard:{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    proc = promtool("check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def until(check, what: str, seconds: float = 60) -> Any:
    """Await check() until it returns something truthy; fail naming `what` past the deadline."""
    try:
        async with asyncio.timeout(seconds):
            while not (result := await check()):
                await asyncio.sleep(0.1)
            return result
    except TimeoutError:
        pytest.fail(f"no {what} within {seconds} s")


@needs_prometheus
@pytest.mark.slow
async def test_real_prometheus_scrapes_both_services(tmp_path, start_backend, start_orchestrator,
                                                      smollm2, http):
    backend = base_url(await start_backend(spec("smollm2", smollm2), api_keys=("backend-key",)))
    settings = orchestrator_settings(("vps", backend), model="smollm2",
                                     api_keys=("orchestrator-key",))
    settings = replace(settings, backends=(Backend("vps", backend, api_key="backend-key"),))
    orchestrator = await start_orchestrator(settings)

    port = free_port()
    config = config_for(
        tmp_path, {"cerebrum-orchestrator": orchestrator.removeprefix("http://"),
                   "cerebrum-backend": backend.removeprefix("http://")},
        {"cerebrum-orchestrator": "orchestrator-key", "cerebrum-backend": "backend-key"},
        interval="1s")
    assert PROMETHEUS is not None
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        async def query(promql: str) -> list[dict[str, Any]]:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited: {log.read_text()[-2000:]}")
            try:
                async with http.get(api + "/query", params={"query": promql}) as resp:
                    if resp.status == 503:  # listening, not ready yet (plain-text answer)
                        return []
                    body = await resp.json()
            except (OSError, ValueError):  # not listening yet
                return []
            return body["data"]["result"] if body.get("status") == "success" else []

        async def value(promql: str) -> float | None:
            result = await query(promql)
            return float(result[0]["value"][1]) if result else None

        # Both jobs scraped with their keys (a 401 would make up 0).
        assert await until(lambda: value('up{job="cerebrum-orchestrator"} == 1'),
                           "successful orchestrator scrape") == 1
        assert await until(lambda: value('up{job="cerebrum-backend"} == 1'),
                           "successful backend scrape") == 1
        # Series each exports: the scrapes themselves, counted by each service (so they
        # passed its API key check), the backend's model queue and the orchestrator's breaker.
        scraped = 'endpoint="/metrics",status="200"'
        assert await until(lambda: value(f"cerebrum_orchestrator_requests_total{{{scraped}}}"),
                           "orchestrator request series") >= 1
        assert await until(lambda: value(f"cerebrum_backend_requests_total{{{scraped}}}"),
                           "backend request series") >= 1
        assert await value('cerebrum_backend_queue_depth{model="smollm2"}') == 0
        assert await value('cerebrum_orchestrator_breaker_state{backend="vps"}') == 0

        # The shipped rules are loaded and evaluate without error against live series.
        async def rules_evaluated() -> list[dict[str, Any]]:
            async with http.get(api + "/rules") as resp:
                groups = (await resp.json())["data"]["groups"]
            loaded = [r for g in groups for r in g["rules"]]
            return loaded if loaded and all(r.get("lastEvaluation", "").startswith("20")
                                            for r in loaded) else []
        loaded = await until(rules_evaluated, "evaluated rules")
        assert {r["name"] for r in loaded} == ALERTS
        assert all(r["health"] == "ok" for r in loaded), loaded
        assert {r["name"] for r in loaded if r["state"] != "inactive"} == set()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
