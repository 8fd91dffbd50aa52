"""Backend settings: one frozen dataclass built from a TOML file plus environment overrides.

`load_settings` is the only place that reads configuration; every value is validated there
with a message that names the key, so a bad file fails at start-up, never mid-request.

`write_timeout` (seconds, default 30; `CEREBRUM_BACKEND_WRITE_TIMEOUT`) bounds each write of
a streamed response: a client that reads nothing for that long is dropped and its generation
cancelled, so it cannot hold the model's only generation slot.
"""

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
    read_toml,
)
from cerebrum.cors import origins, origins_from_env

from .models import PACKAGED, default_cache_dir

# How FIM prompts are laid out (engine/fim.py builds them): prefix-suffix-middle or
# suffix-prefix-middle.
FIM_LAYOUTS: tuple[str, ...] = ("psm", "spm")

ENV_PREFIX = "CEREBRUM_BACKEND_"
# The least KV a sequence is worth running with (a short prompt and its answer).
MIN_CELLS_PER_SEQUENCE = 64
CHAT_FORMATS = ("auto", "chatml", "llama-2", "none")


def default_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """systemd's `StateDirectory=` ($STATE_DIRECTORY), else `$XDG_STATE_HOME/cerebrum/backend`
    with the XDG default of `~/.local/state`."""
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cerebrum" / "backend"


@dataclass(frozen=True)
class Sampling:
    """Per-model sampling defaults; a request's own values win."""

    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    max_tokens: int = 512


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the model manifest."""

    name: str
    path: Path | None = None
    source: str | None = None  # a key of models.PACKAGED
    n_ctx: int = 4096
    n_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    n_batch: int = 512
    chat_format: str = "auto"
    # Off by default: this llama.cpp build's CPU flash attention evaluates prompts ~20 % faster
    # but is slower for every multi-token batch past a few hundred positions (a 17-token
    # verify step at position 1,700: 271 ms on, 191 ms off) and for one-token steps at 4k
    # (40 against 29-36 ms); docs/benchmarks.md. "exact" speculative decoding needs it on.
    flash_attn: bool = False
    # llama.cpp's repacked weights (its CPU "extra buffer types": AVX2/AVX-512 interleaved
    # blocks, AMX): another weight layout with its own kernels. Off by default: with the plain
    # layout and flash attention, short batches early in a context give bit-identical logits
    # to one-token steps, which `speculative = "exact"` relies on.
    weight_repack: bool = False
    prompt_cache_bytes: int = 256 * 1024 * 1024
    # The prefix cache on disk (engine/disk_cache.py): the KV of requests' stable prefixes
    # (system prompt and tools) of at least `prefix_cache_min_tokens`, kept under state_dir
    # across restarts; at most `prefix_cache_disk_bytes` (0: off), least recently used first
    # out. A Claude Code prefix is ~250 MB with the 0.5B, ~590 MB with the 1.5B.
    prefix_cache_disk_bytes: int = 4 * 1024 ** 3
    prefix_cache_min_tokens: int = 1024
    # Fill-in-the-middle: "psm" (prefix, suffix, middle: how Qwen2.5-Coder was trained) or
    # "spm"; the suffix is cut to its first `fim_suffix_tokens` tokens (0: a quarter of the
    # context), which bounds what one line typed at the cursor re-evaluates under "psm".
    fim_layout: str = "psm"
    fim_suffix_tokens: int = 64
    # Speculative decoding from the request's own text (n-grams of the prompt and the answer,
    # the client's `prediction`): "auto" drafts unless a request says `"speculative": false`,
    # verified as llama-server does; "exact" also keeps drafts within the batch size measured
    # to give one-token steps' logits bit for bit (slower; see docs/backend-api.md); "off"
    # drafts only when a request says `"speculative": true`. Drafts are draft_min to draft_max
    # tokens long (adapted to what is accepted).
    speculative: str = "auto"
    draft_min: int = 4  # the shortest draft worth verifying (engine/speculative.py)
    draft_max: int = 47  # drafts are 7, 11, 15, … 47 tokens: engine/speculative.py says why
    # Generations run at once, batched into one decode step (engine/decoding/scheduler.py). The KV
    # cache is one pool of n_ctx cells shared by the sequences (an agent's 20k-token prompt
    # can take most of it while an editor's completions take a few hundred), so more
    # sequences cost no KV memory: 4, as llama-server's `-np` auto; docs/configuration.md.
    parallel: int = 4
    # About how long one decode step may take (ms): the running sequences' next tokens
    # first, then chunks of the prompts being evaluated, sized from what prompt tokens cost
    # in the last steps; it bounds how long a long prompt holds up the streams and an
    # editor's request arriving (docs/benchmarks.md#concurrency).
    step_ms: int = 250
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class Settings:
    """Everything the backend needs to run; built by `load_settings`."""

    models: tuple[ModelSpec, ...]
    host: str = "127.0.0.1"
    port: int = 9000
    max_queue: int = 4
    max_body_bytes: int = 1024 * 1024
    max_tokens_cap: int = 4096
    max_n: int = 4  # choices per request (OpenAI's `n`), generated one after another
    token_buffer: int = 64
    write_timeout: float = 30.0
    idle_exit: float = 0.0
    cache_dir: Path = field(default_factory=default_cache_dir)
    state_dir: Path = field(default_factory=default_state_dir)  # the prefix cache on disk
    log_level: str = "info"
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call; "*": any
    aliases: Aliases = DEFAULT_ALIASES  # (model-name pattern, model name; "": the first)

    def model(self, name: str) -> ModelSpec | None:
        """The manifest entry called `name`, if any (names are never file paths)."""
        return next((m for m in self.models if m.name == name), None)


_TOP_KEYS: dict[str, type] = {
    "host": str,
    "port": int,
    "max_queue": int,
    "max_body_bytes": int,
    "max_tokens_cap": int,
    "max_n": int,
    "token_buffer": int,
    "write_timeout": float,
    "idle_exit": float,
    "cache_dir": Path,
    "state_dir": Path,
    "log_level": str,
    "api_keys_file": Path,
}
SPECULATIVE = ("auto", "exact", "off")
_MODEL_KEYS: dict[str, type] = {
    "name": str,
    "path": Path,
    "source": str,
    "n_ctx": int,
    "n_threads": int,
    "n_batch": int,
    "chat_format": str,
    "flash_attn": bool,
    "weight_repack": bool,
    "prompt_cache_bytes": int,
    "prefix_cache_disk_bytes": int,
    "prefix_cache_min_tokens": int,
    "fim_layout": str,
    "fim_suffix_tokens": int,
    "speculative": str,
    "draft_min": int,
    "draft_max": int,
    "parallel": int,
    "step_ms": int,
}
_SAMPLING_KEYS: dict[str, type] = {
    "temperature": float,
    "top_p": float,
    "top_k": int,
    "min_p": float,
    "repeat_penalty": float,
    "max_tokens": int,
}


def _sampling(table: Any, where: str) -> Sampling:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table")
    s = Sampling(**fields(table, _SAMPLING_KEYS, f"{where}."))
    check_range(f"{where}.temperature", s.temperature, 0.0, 2.0)
    check_range(f"{where}.top_p", s.top_p, 0.0, 1.0)
    check_range(f"{where}.min_p", s.min_p, 0.0, 1.0)
    check_range(f"{where}.top_k", s.top_k, 0)
    check_range(f"{where}.repeat_penalty", s.repeat_penalty, 0.0)
    check_range(f"{where}.max_tokens", s.max_tokens, 1)
    return s


def _model(table: Any, index: int) -> ModelSpec:
    where = f"models[{index}]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table")
    table = dict(table)
    sampling = _sampling(table.pop("sampling", {}), f"{where}.sampling")
    values = fields(table, _MODEL_KEYS, f"{where}.")
    if "name" not in values:
        raise ConfigError(f"{where}.name: required")
    spec = ModelSpec(sampling=sampling, **values)
    if (spec.path is None) == (spec.source is None):
        raise ConfigError(f"{where}: set exactly one of 'path' or 'source'")
    if spec.source is not None and spec.source not in PACKAGED:
        raise ConfigError(f"{where}.source: unknown packaged model {spec.source!r} "
                          f"(known: {', '.join(sorted(PACKAGED))})")
    if spec.chat_format not in CHAT_FORMATS:
        raise ConfigError(f"{where}.chat_format: must be one of {', '.join(CHAT_FORMATS)}")
    if spec.fim_layout not in FIM_LAYOUTS:
        raise ConfigError(f"{where}.fim_layout: must be one of {', '.join(FIM_LAYOUTS)}")
    check_range(f"{where}.fim_suffix_tokens", spec.fim_suffix_tokens, 0, 1 << 20)
    if spec.speculative not in SPECULATIVE:
        raise ConfigError(f"{where}.speculative: must be one of {', '.join(SPECULATIVE)}")
    if spec.speculative == "exact" and not spec.flash_attn:
        raise ConfigError(f"{where}.speculative: \"exact\" needs flash_attn = true (without "
                          "it no batch gives one-token steps' logits)")
    check_range(f"{where}.draft_min", spec.draft_min, 1, 64)
    check_range(f"{where}.draft_max", spec.draft_max, spec.draft_min, 64)
    check_range(f"{where}.n_ctx", spec.n_ctx, 16, 1 << 20)
    check_range(f"{where}.n_threads", spec.n_threads, 1, 1024)
    check_range(f"{where}.n_batch", spec.n_batch, 1, 1 << 16)
    check_range(f"{where}.prompt_cache_bytes", spec.prompt_cache_bytes, 0)
    check_range(f"{where}.prefix_cache_disk_bytes", spec.prefix_cache_disk_bytes, 0)
    check_range(f"{where}.prefix_cache_min_tokens", spec.prefix_cache_min_tokens, 16, 1 << 20)
    check_range(f"{where}.parallel", spec.parallel, 1, 64)
    check_range(f"{where}.step_ms", spec.step_ms, 10, 60_000)
    if spec.n_ctx < MIN_CELLS_PER_SEQUENCE * spec.parallel:
        raise ConfigError(f"{where}.parallel: {spec.parallel} sequences need n_ctx of at least "
                          f"{MIN_CELLS_PER_SEQUENCE * spec.parallel} ({MIN_CELLS_PER_SEQUENCE} "
                          f"KV cells each), n_ctx is {spec.n_ctx}")
    return spec


def default_models() -> tuple[ModelSpec, ...]:
    """The manifest used without a config file: every packaged model, the 1.5B first (the
    smallest that drives a coding agent: docs/agents.md), the 0.5B the low-memory choice."""
    return (
        # Qwen2.5-Coder's own window: the agents' prompts (Claude Code's first is ~21k
        # tokens). KV cache, f16: 28 KiB a token for the 1.5B (896 MiB at 32k), 12 KiB for
        # the 0.5B (384 MiB), allocated when a model is first used (docs/agents.md).
        ModelSpec(name="qwen2.5-coder-1.5b-instruct", source="qwen2.5-coder-1.5b-instruct",
                  n_ctx=32768),
        ModelSpec(name="qwen2.5-coder-0.5b-instruct", source="qwen2.5-coder-0.5b-instruct",
                  n_ctx=32768),
        ModelSpec(name="smollm2-135m-instruct", source="smollm2-135m-instruct", n_ctx=2048),
    )


def load_settings(path: Path | None = None, environ: Mapping[str, str] = os.environ) -> Settings:
    """Build validated `Settings` from an optional TOML file, then `CEREBRUM_BACKEND_*` env."""
    data = read_toml(path)
    raw_models = data.pop("models", None)
    try:
        aliases = parse_aliases(data.pop("aliases", {}))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    cors = data.pop("cors_origins", ())
    if ENV_PREFIX + "CORS_ORIGINS" in environ:
        cors = origins_from_env(environ[ENV_PREFIX + "CORS_ORIGINS"])
    values = fields(data, _TOP_KEYS, "")
    values["cors_origins"] = origins(cors, "cors_origins")
    values.update(env_overrides(_TOP_KEYS, ENV_PREFIX, environ))
    keys = keys_from(values.pop("api_keys_file", None), environ)

    if raw_models is None:
        models = default_models()
    elif isinstance(raw_models, list) and raw_models:
        models = tuple(_model(m, i) for i, m in enumerate(raw_models))
    else:
        raise ConfigError("models: expected a non-empty array of tables ([[models]])")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"models: duplicate names in {names}")

    for pattern, target in aliases:
        if target and target not in names:
            raise ConfigError(f"aliases.{pattern!r}: no model called {target!r}")
    settings = Settings(models=models, api_keys=keys, aliases=aliases + DEFAULT_ALIASES,
                        **values)
    check_range("port", settings.port, 0, 65535)
    check_range("max_queue", settings.max_queue, 0, 10_000)
    check_range("max_body_bytes", settings.max_body_bytes, 1024)
    check_range("max_tokens_cap", settings.max_tokens_cap, 1)
    check_range("max_n", settings.max_n, 1, 128)
    check_range("token_buffer", settings.token_buffer, 1)
    check_range("write_timeout", settings.write_timeout, 0.01, 3600.0)
    check_range("idle_exit", settings.idle_exit, 0.0)
    if settings.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError("log_level: must be one of debug, info, warning, error")
    return settings
