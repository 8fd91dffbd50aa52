"""Choosing the route (model family) for a request: pinned model, then language, then default."""

from __future__ import annotations

from dataclasses import dataclass

from cerebrum import aliases

from ..errors import NotFound
from ..settings import Route, Settings


@dataclass(frozen=True)
class Decision:
    """Where a request goes, and why (shown in stats and logs)."""

    route: Route
    language: str | None
    reason: str


def choose(settings: Settings, *, model: str, language: str | None,
           language_reason: str) -> Decision:
    """A pinned model (or an alias of a route: `settings.aliases`) wins; else the route for
    the language; else the default route."""
    if model != "auto":
        route = next((r for r in settings.routes if model in (r.model, r.name)), None)
        if route is not None:
            return Decision(route, language, f"model {model} pinned by the request")
        alias = aliases.resolve(model, settings.aliases)
        if alias is None:
            known = sorted({r.model for r in settings.routes} | {"auto"})
            raise NotFound(f"model {model!r} is not routed here; use one of {', '.join(known)}"
                           f" or a name matching {', '.join(p for p, _ in settings.aliases)}",
                           code="model_not_found")
        route = settings.route(alias[1] or settings.default_route)
        return Decision(route, language, f"model {model} is an alias ({alias[0]}) of route "
                                         f"{route.name}")
    if language is not None:
        route = next((r for r in settings.routes if language in r.languages), None)
        if route is not None:
            return Decision(route, language, f"{language} ({language_reason}) → {route.name}")
        return Decision(settings.route(settings.default_route), language,
                        f"no route for {language}: default {settings.default_route}")
    return Decision(settings.route(settings.default_route), None,
                    f"language unknown ({language_reason}): default {settings.default_route}")
