"""CORS for browser clients (pure): which origins may call, and the headers each answer gets.

No origins configured (the default) means no CORS headers at all. A preflight (`OPTIONS` with
`Origin` and `Access-Control-Request-Method`) is answered 204 before authentication, since a
browser never sends credentials with it; only an allowed origin gets Access-Control-* headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .config import ConfigError

ANY = "*"
_ORIGIN = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_METHODS = "GET, POST, OPTIONS"
_HEADERS = "Authorization, Content-Type, X-Request-ID"
_EXPOSED = "X-Request-ID, Retry-After"
MAX_AGE = 600  # seconds a browser may cache a preflight


def origins(items: Any, key: str) -> tuple[str, ...]:
    """`cors_origins`: an array of `*` or scheme://host[:port] origins (no path), or a
    ConfigError naming the key."""
    if not isinstance(items, list | tuple) or not all(isinstance(o, str) for o in items):
        raise ConfigError(f"{key}: expected an array of origins like \"https://app.example\"")
    for origin in items:
        if origin != ANY and not _ORIGIN.fullmatch(origin.rstrip("/")):
            raise ConfigError(f"{key}: {origin!r} is not an origin (scheme://host[:port], "
                              "no path) or *")
    return tuple(o.rstrip("/") for o in items)


def origins_from_env(raw: str) -> list[str]:
    """The environment's form of `cors_origins`: comma-separated."""
    return [o.strip() for o in raw.split(",") if o.strip()]


@dataclass(frozen=True)
class Cors:
    """The configured origins and the headers they earn."""

    allowed: tuple[str, ...] = ()

    def allows(self, origin: str | None) -> bool:
        """Whether `origin` may read responses."""
        return bool(origin) and (ANY in self.allowed or origin in self.allowed)

    @staticmethod
    def is_preflight(method: str, origin: str | None, request_method: str | None) -> bool:
        """An OPTIONS request a browser sends before a cross-origin call: it carries `Origin`
        and `Access-Control-Request-Method`."""
        return method == "OPTIONS" and origin is not None and request_method is not None

    def preflight(self, origin: str | None) -> dict[str, str]:
        """Headers of a preflight's 204: none unless `origin` is allowed."""
        if not self.allows(origin):
            return {}
        return {**self.headers(origin), "Access-Control-Allow-Methods": _METHODS,
                "Access-Control-Allow-Headers": _HEADERS,
                "Access-Control-Max-Age": str(MAX_AGE)}

    def headers(self, origin: str | None) -> dict[str, str]:
        """Headers of any other response: none unless `origin` is allowed."""
        if not self.allows(origin):
            return {}
        assert origin is not None
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Expose-Headers": _EXPOSED}
