"""Orchestrator settings: one frozen dataclass from a TOML file plus environment overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cerebrum.aliases import DEFAULT as DEFAULT_ALIASES
from cerebrum.aliases import Aliases
from cerebrum.aliases import parse as parse_aliases
from cerebrum.config import (
    ConfigError,
    check_range,
    env_overrides,
    fields,
    keys_from,
    read_keys,
    read_toml,
)
from cerebrum.cors import origins, origins_from_env
from cerebrum.languages import LANGUAGES

from .pipeline.budget import TOKEN_ESTIMATES

ENV_PREFIX = "CEREBRUM_ORCHESTRATOR_"


@dataclass(frozen=True)
class Timeouts:
    """Upstream time limits in seconds; running past one counts as a backend failure."""

    connect: float = 3.0
    first_token: float = 120.0
    between_tokens: float = 30.0


@dataclass(frozen=True)
class BreakerPolicy:
    """When a backend's circuit opens, and for how long."""

    failures: int = 3  # consecutive failures that open it
    failure_rate: float = 0.5  # … or this share of the last `window` calls
    window: int = 20
    cooldown: float = 10.0  # seconds open before one probe is let through
    probe_timeout: float = 30.0  # the half-open probe's own first-token limit


@dataclass(frozen=True)
class Backend:
    """An OpenAI-compatible upstream (this project's backend, llama-server, vLLM, Ollama)."""

    name: str
    url: str
    api_key: str | None = field(default=None, repr=False)
    tokenize: bool = True  # offers POST /v1/tokenize for exact counts
    weight: int = 1  # its share of a route's load: outstanding requests are divided by it
    # What it speaks: "llama.cpp" (this project's backend, llama-server: OpenAI's Chat and
    # Text Completions, /infill, /completion, /v1/responses, /v1/messages) or "openai" (Chat
    # and Text Completions only: vLLM, Ollama, LiteLLM), to which the agents' formats are
    # translated.
    api: str = "llama.cpp"


@dataclass(frozen=True)
class Route:
    """A model family: which model to ask for, on which backends (load spread over them,
    failover to the next; see pi_appliance.upstream.balance)."""

    name: str
    model: str
    backends: tuple[str, ...]
    languages: tuple[str, ...] = ()
    n_ctx: int = 4096
    chat: bool = True  # chat model (messages) or base model (completion prompt)
    tokenizer: str = "any"  # token-estimate family (pipeline.TOKEN_ESTIMATES) for budgeting


@dataclass(frozen=True)
class PipelineSettings:
    """Context pipeline knobs (see pi_appliance.pipeline)."""

    chunk_threshold: int = 1500
    top_k: int = 3
    min_reduction: float = 0.20
    timeout_ms: float = 250.0  # past it the raw prompt goes (budget permitting), never a hang
    workers: int = 1  # pipeline worker processes (~15 MB each)


@dataclass(frozen=True)
class Settings:
    """Everything the orchestrator needs; built by `load_settings`."""

    backends: tuple[Backend, ...]
    routes: tuple[Route, ...]
    default_route: str
    host: str = "127.0.0.1"
    port: int = 7000
    max_concurrent: int = 2
    max_body_bytes: int = 1024 * 1024
    max_header_bytes: int = 16 * 1024  # all request headers together; over it: 431
    write_timeout: float = 30.0  # a client that takes longer to accept a write is dropped
    default_max_tokens: int = 512
    max_tokens_cap: int = 4096
    idle_exit: float = 0.0
    log_level: str = "info"
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call; "*": any
    timeouts: Timeouts = field(default_factory=Timeouts)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    aliases: Aliases = DEFAULT_ALIASES  # (pattern, route name; "": the default route)

    def route(self, name: str) -> Route:
        """The route called `name` (validated to exist at load time)."""
        return next(r for r in self.routes if r.name == name)

    def backend(self, name: str) -> Backend:
        """The backend called `name` (validated to exist at load time)."""
        return next(b for b in self.backends if b.name == name)


DEMO_MODEL = "qwen2.5-coder-1.5b-instruct"


def default_backends() -> tuple[Backend, ...]:
    """Without a config: the backend of `make serve` on this machine."""
    return (Backend(name="local", url="http://127.0.0.1:9000"),)


def default_routes() -> tuple[Route, ...]:
    """Without a config: both families routed to the packaged Qwen2.5-Coder-1.5B, at its own
    32k window (the backend's default manifest serves it so)."""
    return (
        Route("qwen", DEMO_MODEL, ("local",), ("python", "javascript", "typescript"),
              n_ctx=32768, tokenizer="qwen2"),
        Route("codellama", DEMO_MODEL, ("local",), ("rust", "c", "cpp"), n_ctx=32768,
              tokenizer="qwen2"),
    )


_TOP = {"host": str, "port": int, "max_concurrent": int, "max_body_bytes": int,
        "max_header_bytes": int, "write_timeout": float, "default_max_tokens": int,
        "max_tokens_cap": int, "idle_exit": float, "log_level": str,
        "api_keys_file": Path, "default_route": str}
_TIMEOUTS = {"connect": float, "first_token": float, "between_tokens": float}
_BREAKER = {"failures": int, "failure_rate": float, "window": int, "cooldown": float,
            "probe_timeout": float}
_PIPELINE = {"chunk_threshold": int, "top_k": int, "min_reduction": float,
             "timeout_ms": float, "workers": int}
_BACKEND = {"name": str, "url": str, "api_key_file": Path,
            "tokenize": bool, "weight": int, "api": str}
APIS = ("llama.cpp", "openai")
_ROUTE = {"name": str, "model": str, "backends": list, "languages": list, "n_ctx": int,
          "chat": bool, "tokenizer": str}


def _table(data: dict[str, Any], key: str) -> Mapping[str, Any]:
    value = data.pop(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a table")
    return value


def _array(data: dict[str, Any], key: str) -> list[Mapping[str, Any]] | None:
    value = data.pop(key, None)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{key}: expected a non-empty array of tables ([[{key}]])")
    return value


def _strings(value: list[Any], key: str) -> tuple[str, ...]:
    if not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key}: expected an array of non-empty strings")
    return tuple(value)


def _backend(table: Mapping[str, Any], i: int) -> Backend:
    where = f"backends[{i}]."
    values = fields(table, _BACKEND, where)
    for key in ("name", "url"):
        if key not in values:
            raise ConfigError(f"{where}{key}: required")
    if not values["url"].startswith(("http://", "https://")):
        raise ConfigError(f"{where}url: must start with http:// or https://")
    check_range(f"{where}weight", values.get("weight", 1), 1, 1000)
    if values.get("api", APIS[0]) not in APIS:
        raise ConfigError(f"{where}api: must be one of {', '.join(APIS)}")
    key_file = values.pop("api_key_file", None)
    keys = read_keys(key_file, f"{where}api_key_file") if key_file is not None else ()
    return Backend(api_key=keys[0] if keys else None, **{**values,
                   "url": values["url"].rstrip("/")})


def _route(table: Mapping[str, Any], i: int, backends: set[str]) -> Route:
    where = f"routes[{i}]."
    values = fields(table, _ROUTE, where)
    for key in ("name", "model", "backends"):
        if key not in values:
            raise ConfigError(f"{where}{key}: required")
    values["backends"] = _strings(values["backends"], f"{where}backends")
    values["languages"] = _strings(values.get("languages", []), f"{where}languages")
    if unknown := [b for b in values["backends"] if b not in backends]:
        raise ConfigError(f"{where}backends: unknown backend {unknown[0]!r}")
    if bad := [lang for lang in values["languages"] if lang not in LANGUAGES]:
        raise ConfigError(f"{where}languages: unknown language {bad[0]!r} "
                          f"(known: {', '.join(LANGUAGES)})")
    check_range(f"{where}n_ctx", values.get("n_ctx", 4096), 16)
    if values.get("tokenizer", "any") not in TOKEN_ESTIMATES:
        raise ConfigError(f"{where}tokenizer: must be one of {', '.join(TOKEN_ESTIMATES)}")
    return Route(**values)


def load_settings(path: os.PathLike[str] | None = None,
                  environ: Mapping[str, str] = os.environ) -> Settings:
    """Build validated `Settings` from an optional TOML file, then `CEREBRUM_ORCHESTRATOR_*`."""
    data = read_toml(path)
    timeouts = Timeouts(**fields(_table(data, "timeouts"), _TIMEOUTS, "timeouts."))
    breaker = BreakerPolicy(**fields(_table(data, "breaker"), _BREAKER, "breaker."))
    pipeline = PipelineSettings(**fields(_table(data, "pipeline"), _PIPELINE, "pipeline."))
    raw_backends, raw_routes = _array(data, "backends"), _array(data, "routes")
    try:
        aliases = parse_aliases(data.pop("aliases", {}))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    cors = data.pop("cors_origins", ())
    if ENV_PREFIX + "CORS_ORIGINS" in environ:
        cors = origins_from_env(environ[ENV_PREFIX + "CORS_ORIGINS"])
    values = fields(data, _TOP, "")
    values["cors_origins"] = origins(cors, "cors_origins")
    values.update(env_overrides(_TOP, ENV_PREFIX, environ))
    keys = keys_from(values.pop("api_keys_file", None), environ)

    backends = (tuple(_backend(t, i) for i, t in enumerate(raw_backends))
                if raw_backends else default_backends())
    names = [b.name for b in backends]
    if len(set(names)) != len(names):
        raise ConfigError(f"backends: duplicate names in {names}")
    routes = (tuple(_route(t, i, set(names)) for i, t in enumerate(raw_routes))
              if raw_routes else default_routes())
    route_names = [r.name for r in routes]
    if len(set(route_names)) != len(route_names):
        raise ConfigError(f"routes: duplicate names in {route_names}")
    default_route = values.pop("default_route", route_names[0])
    if default_route not in route_names:
        raise ConfigError(f"default_route: no route called {default_route!r}")

    for pattern, target in aliases:
        if target and target not in route_names:
            raise ConfigError(f"aliases.{pattern!r}: no route called {target!r}")
    s = Settings(backends=backends, routes=routes, default_route=default_route, api_keys=keys,
                 timeouts=timeouts, breaker=breaker, pipeline=pipeline,
                 aliases=aliases + DEFAULT_ALIASES, **values)
    check_range("port", s.port, 0, 65535)
    check_range("max_concurrent", s.max_concurrent, 1, 10_000)
    check_range("max_body_bytes", s.max_body_bytes, 1024)
    check_range("max_header_bytes", s.max_header_bytes, 1024, 1024 * 1024)
    check_range("write_timeout", s.write_timeout, 0.001, 3600.0)
    check_range("default_max_tokens", s.default_max_tokens, 1)
    check_range("max_tokens_cap", s.max_tokens_cap, 1)
    check_range("idle_exit", s.idle_exit, 0.0)
    for key in ("connect", "first_token", "between_tokens"):
        check_range(f"timeouts.{key}", getattr(timeouts, key), 0.001)
    check_range("breaker.failures", breaker.failures, 1)
    check_range("breaker.failure_rate", breaker.failure_rate, 0.0, 1.0)
    check_range("breaker.window", breaker.window, 1)
    check_range("breaker.cooldown", breaker.cooldown, 0.0)
    check_range("breaker.probe_timeout", breaker.probe_timeout, 0.001)
    check_range("pipeline.chunk_threshold", pipeline.chunk_threshold, 100)
    check_range("pipeline.top_k", pipeline.top_k, 1)
    check_range("pipeline.min_reduction", pipeline.min_reduction, 0.0, 1.0)
    check_range("pipeline.timeout_ms", pipeline.timeout_ms, 1.0, 60_000.0)
    check_range("pipeline.workers", pipeline.workers, 1, 16)
    if s.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError("log_level: must be one of debug, info, warning, error")
    return s
