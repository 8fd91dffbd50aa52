"""Typed application keys: how handlers reach the long-lived objects the factory made."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from cerebrum.activation import Activity
from cerebrum.context import RequestContext
from cerebrum.cors import Cors

from ..identity import ModelIdentity
from ..metrics import Metrics
from ..settings import Settings
from .runtime import Runtime

if TYPE_CHECKING:  # the engine imports llama-cpp-python: loaded on first use (runtime.py)
    from ..engine.slots import ModelSlot

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
# Filled in place when the runtime loads (empty until the first request that needs a model).
SLOTS = web.AppKey("slots", dict[str, "ModelSlot"])
RUNTIME = web.AppKey("runtime", Runtime)
ACTIVITY = web.AppKey("activity", Activity)
CLOCK = web.AppKey("clock", Callable[[], float])
CORS = web.AppKey("cors", Cors)
IDENTITIES = web.AppKey("identities", dict[str, ModelIdentity])


CONTEXT = web.RequestKey("context", RequestContext)
