"""Typed application keys: how handlers reach the long-lived objects the factory made."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from cerebrum.activation import Activity
from cerebrum.context import RequestContext
from cerebrum.cors import Cors

from .engine import ModelSlot
from .identity import ModelIdentity
from .metrics import Metrics
from .settings import Settings

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
SLOTS = web.AppKey("slots", dict[str, ModelSlot])
ACTIVITY = web.AppKey("activity", Activity)
CLOCK = web.AppKey("clock", Callable[[], float])
CORS = web.AppKey("cors", Cors)
IDENTITIES = web.AppKey("identities", dict[str, ModelIdentity])


CONTEXT = web.RequestKey("context", RequestContext)
