"""The half of the backend that needs llama-cpp-python, loaded on first use.

Socket activation with idle exit means every first request after a quiet spell pays the
server's start-up. llama-cpp-python (with numpy, jinja2 and the shared library it opens) is
most of that, and `/health`, `/metrics` and `/v1/models` need none of it: the server starts
serving without it, and the first request that needs a model imports the engine and the
model endpoints (`routes` names them) in a worker thread, once, then makes the model slots.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from cerebrum.activation import Clock

from .. import models
from ..metrics import Metrics
from ..settings import ModelSpec, Settings

if TYPE_CHECKING:
    from ..engine.slots import Loader, ModelSlot


class Runtime:
    """Imports the engine and the model endpoints on first use and fills `slots` (one per
    manifest model)."""

    def __init__(self, settings: Settings, slots: dict[str, ModelSlot], *,
                 loader: Loader | None, metrics: Metrics, clock: Clock,
                 fingerprints: dict[str, str]):
        self._settings = settings
        self._fingerprints = fingerprints  # a model's KV on disk is its fingerprint's
        self._slots = slots
        self._loader = loader
        self._metrics = metrics
        self._clock = clock
        self._endpoints: ModuleType | None = None
        self._lock = asyncio.Lock()

    async def endpoints(self, module: str) -> ModuleType:
        """The model endpoints' `module`, with the slots made; the first call imports it and
        the engine."""
        if self._endpoints is None:
            async with self._lock:
                if self._endpoints is None:
                    endpoints, engine = await asyncio.to_thread(_import, module)
                    self._slots.update(self._make_slots(engine))  # on the loop: readers see
                    self._endpoints = endpoints                  # no half-filled dict
        return self._endpoints

    def _make_slots(self, engine: ModuleType) -> dict[str, ModelSlot]:
        settings = self._settings
        path_of = packaged_or_path(settings.cache_dir)
        return {
            spec.name: engine.ModelSlot(
                spec, path_of=path_of, loader=self._loader or engine.load_llama,
                max_queue=settings.max_queue, token_buffer=settings.token_buffer,
                metrics=self._metrics, clock=self._clock,
                prefix_dir=settings.state_dir / "prefixes" / spec.name,
                fingerprint=self._fingerprints[spec.name])
            for spec in settings.models
        }


def _import(endpoints: str) -> tuple[ModuleType, ModuleType]:
    engine = importlib.import_module("vps_appliance.engine.slots")
    return importlib.import_module(endpoints), engine


def packaged_or_path(cache_dir: Path) -> Callable[[ModelSpec], Path]:
    """How a manifest entry becomes a file: a packaged source (verified) or a given path."""

    def path_of(spec: ModelSpec) -> Path:
        if spec.source is not None:
            return models.resolve(spec.source, cache_dir)
        assert spec.path is not None
        return spec.path

    return path_of
