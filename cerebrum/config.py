"""Validating TOML/env settings: typed fields, ranges, and messages that name the key."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """The configuration file or environment is invalid; the message names the key."""


def typed(value: Any, kind: type, key: str) -> Any:
    """`value` as `kind` (ints widen to float, strings to Path), or a ConfigError."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is Path and isinstance(value, str):
        return Path(value).expanduser()
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def from_env(raw: str, kind: type, key: str) -> Any:
    """Parse an environment variable's text as `kind`."""
    try:
        if kind is bool:
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if kind is Path:
            return Path(raw).expanduser()
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{key}: cannot read {raw!r} as {kind.__name__}") from None


def check_range(key: str, value: float, lo: float, hi: float | None = None) -> None:
    """ConfigError unless lo <= value (<= hi); NaN is never in range."""
    if value != value or value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ConfigError(f"{key}: must be {bound}, got {value}")


def fields(table: Mapping[str, Any], schema: Mapping[str, type], where: str) -> dict[str, Any]:
    """Check a TOML table against `schema` (key → type); unknown keys are errors."""
    out = {}
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(f"{where}{key}: unknown key (known: {', '.join(schema)})")
        out[key] = typed(value, schema[key], f"{where}{key}")
    return out


def env_overrides(schema: Mapping[str, type], prefix: str,
                  environ: Mapping[str, str]) -> dict[str, Any]:
    """`PREFIX_KEY` environment variables for each key of `schema`, parsed."""
    return {key: from_env(environ[prefix + key.upper()], kind, prefix + key.upper())
            for key, kind in schema.items() if prefix + key.upper() in environ}


def read_toml(path: Path | None) -> dict[str, Any]:
    """The parsed file, {} for None, or a ConfigError naming the file."""
    if path is None:
        return {}
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def read_keys(path: Path, key: str = "api_keys_file") -> tuple[str, ...]:
    """API keys from a file: one per line, blank lines and # comments ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None
    return tuple(k for line in text.splitlines() if (k := line.strip()) and not k.startswith("#"))


def keys_from(keys_file: Path | None, environ: Mapping[str, str],
              variable: str = "CEREBRUM_API_KEYS") -> tuple[str, ...]:
    """Keys from the configured file plus a comma-separated environment variable."""
    keys = read_keys(keys_file) if keys_file is not None else ()
    return keys + tuple(k.strip() for k in environ.get(variable, "").split(",") if k.strip())


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_keys: tuple[str, ...],
                   variable: str = "CEREBRUM_API_KEYS") -> None:
    """Refuse to serve a non-loopback address without an API key."""
    if not api_keys and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without an API key: set {variable}=<key> "
            f"or api_keys_file in the config (or bind 127.0.0.1)"
        )


def default_environ() -> Mapping[str, str]:
    """The process environment (a function, so callers can pass their own in tests)."""
    return os.environ
