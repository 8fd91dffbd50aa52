"""Worker processes for the context pipeline: CPU-bound planning off the event loop and out
of its GIL, under a deadline.

A thread would not do: a regular expression over a 1 MiB line holds the GIL for tens of
milliseconds at a time, and `/health` must answer within 100 ms while one is processed. Each
worker is `python -m pi_appliance.planning.workers`, a small child that imports only the
pipeline, reads pickled calls on stdin and writes pickled results on stdout (length-prefixed).
A call that runs past its deadline, or whose caller goes away, has its worker killed and
replaced, so a hostile prompt costs at most the deadline's worth of one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

_LENGTH = struct.Struct("!I")
_READY = b"ready\n"
_READY_TIMEOUT = 60.0  # seconds for a new worker to import the pipeline (a CM4 takes ~1)


class WorkerFailed(Exception):
    """A pipeline worker died or answered something unreadable."""


class _Worker:
    """One child process and its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc

    async def call(self, message: bytes) -> bytes:
        """Send one framed call; the framed reply."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(_LENGTH.pack(len(message)) + message)
            await stdin.drain()
            size = _LENGTH.unpack(await stdout.readexactly(_LENGTH.size))[0]
            return await stdout.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError) as exc:
            raise WorkerFailed(f"pipeline worker exited ({type(exc).__name__})") from None

    def kill(self) -> None:
        """Stop the child now."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


class WorkerPool:
    """`size` pipeline workers; `run` calls a picklable function in an idle one."""

    def __init__(self, size: int, argv: Sequence[str] = (
            sys.executable, "-m", "pi_appliance.planning.workers")):
        self._size = size
        self._argv = tuple(argv)
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self._spawning: set[asyncio.Task[None]] = set()
        self._ready: asyncio.Future[None] | None = None  # the workers' start (`start`)

    def start(self) -> None:
        """Start the workers in the background (a socket-activated start answers `/health`
        without waiting for them); `run` waits until they have imported the pipeline before
        its deadline starts, so the first request does not spend it on a worker's start-up."""
        self._ready = asyncio.ensure_future(self._start())

    async def _start(self) -> None:
        for _ in range(self._size):
            await self._spawn()

    async def stop(self) -> None:
        """Stop every worker: end of input, then kill what is still there."""
        if self._ready is not None:
            self._ready.cancel()
            with contextlib.suppress(asyncio.CancelledError, WorkerFailed):
                await self._ready
        for task in list(self._spawning):
            task.cancel()
        for worker in list(self._all):
            if worker.proc.stdin is not None:
                worker.proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await worker.proc.wait()
            worker.kill()
            await worker.proc.wait()
        self._all.clear()

    async def run(self, fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
        """`fn(*args)` in a worker within `timeout` seconds (waiting for one included):
        its result or its exception; TimeoutError past the deadline, WorkerFailed if the
        worker died."""
        message = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        if self._ready is not None:  # WorkerFailed if they did not start
            await asyncio.shield(self._ready)
        async with asyncio.timeout(timeout):
            worker = await self._idle.get()
            try:
                reply = await worker.call(message)
            except BaseException:  # deadline, caller gone or worker dead: no reuse
                self._replace(worker)
                raise
        self._idle.put_nowait(worker)
        try:
            ok, value = pickle.loads(reply)
        except Exception:
            raise WorkerFailed("pipeline worker sent an unreadable reply") from None
        if not ok:
            raise value
        return value

    async def _spawn(self) -> None:
        # The parent's import path, so a wrapped interpreter (Nix's, a zipapp) finds the
        # same packages in the child as in the parent.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = await asyncio.create_subprocess_exec(
            *self._argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=env, limit=1 << 26)
        worker = _Worker(proc)
        self._all.add(worker)
        try:  # it says so once it has imported the pipeline
            async with asyncio.timeout(_READY_TIMEOUT):
                assert proc.stdout is not None
                await proc.stdout.readexactly(len(_READY))
        except (TimeoutError, asyncio.IncompleteReadError):
            worker.kill()
            self._all.discard(worker)
            raise WorkerFailed("a pipeline worker did not start") from None
        self._idle.put_nowait(worker)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._all.discard(worker)
        task = asyncio.ensure_future(self._respawn(worker))
        self._spawning.add(task)
        task.add_done_callback(self._spawning.discard)

    async def _respawn(self, worker: _Worker) -> None:
        await worker.proc.wait()
        await self._spawn()


def _serve() -> None:
    """The child: answer framed, pickled calls on stdin until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    # Warm: the first call is then as fast as the rest.
    import pi_appliance.planning.plan  # noqa: F401

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into the replies
    out.write(_READY)
    out.flush()
    stdin = sys.stdin.buffer
    while header := stdin.read(_LENGTH.size):
        if len(header) < _LENGTH.size:
            return
        fn, args = pickle.loads(stdin.read(_LENGTH.unpack(header)[0]))
        try:
            reply = (True, fn(*args))
        except Exception as exc:  # the caller's to handle (BadRequest, …)
            reply = (False, exc)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            data = pickle.dumps((False, WorkerFailed(f"unpicklable {type(reply[1]).__name__}")))
        out.write(_LENGTH.pack(len(data)) + data)
        out.flush()


if __name__ == "__main__":
    _serve()
