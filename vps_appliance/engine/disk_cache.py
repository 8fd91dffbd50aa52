"""A per-model prefix cache on disk: the KV of requests' stable prefixes (an agent's system
prompt and tools), kept across sessions, idle exits and restarts.

A request whose prompt begins with a stable prefix of at least `min_tokens` tokens
(`Control.prefix`, from the request's structure) has the KV of exactly that prefix written
here once it is evaluated; a later request sharing at least `min_tokens` tokens with a stored
prefix loads it into its sequence and evaluates only the rest. One file a prefix, named by a
hash of the model's fingerprint and the tokens; least recently used files go first when the
directory grows past `capacity_bytes`.

Files are written by a thread of their own (never the decode loop), to a temporary name then
renamed, so a crash leaves no half file under a real name. A file is checked before its KV is
used — its header, the model fingerprint, its length and a SHA-256 of its tokens and KV — and
one that fails is removed with a log line; the request is then served as if nothing was
stored.

The format: `MAGIC`, a 4-byte little-endian header length, the header (JSON: model, tokens,
kv_bytes, sha256), the tokens (int32, little-endian), the KV (llama.cpp's per-sequence
state).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog

from .prompt_cache import Snapshot, common_prefix

log = structlog.get_logger("cerebrum.backend")

MAGIC = b"CRBKV\x00\x01\x00"
SUFFIX = ".kv"
PENDING_WRITES = 2  # prefixes waiting for the writer; more are dropped (memory, not disk)


@dataclass
class Entry:
    """One stored prefix: its file, tokens, size and last use (the file's mtime)."""

    path: Path
    tokens: tuple[int, ...]
    size: int
    used_at: float


@dataclass(frozen=True)
class Events:
    """What the cache reports (metrics): hits, stores, rejected files, bytes, load time."""

    stored: Callable[[], None] = lambda: None
    rejected: Callable[[], None] = lambda: None
    size: Callable[[int], None] = lambda _: None
    loaded: Callable[[float], None] = lambda _: None


class BadFile(Exception):
    """A stored file that cannot be used (its reason is the message: no request text)."""


def _packed(tokens: Sequence[int]) -> bytes:
    """Tokens as the file holds them: int32, little-endian."""
    return np.asarray(tokens, dtype="<i4").tobytes()


def file_name(model: str, tokens: Sequence[int]) -> str:
    """The file a prefix is stored under: the same prefix of the same model, the same name."""
    digest = hashlib.sha256(model.encode())
    digest.update(_packed(tokens))
    return digest.hexdigest()[:40] + SUFFIX


def encode_header(model: str, tokens: Sequence[int], kv: bytes | memoryview) -> bytes:
    """Everything before the KV: magic, header, tokens."""
    packed = _packed(tokens)
    digest = hashlib.sha256(packed)
    digest.update(kv)
    header = json.dumps({"model": model, "tokens": len(tokens), "kv_bytes": len(kv),
                         "sha256": digest.hexdigest()}).encode()
    return MAGIC + struct.pack("<I", len(header)) + header + packed


def read_head(handle, model: str, size: int) -> tuple[dict, tuple[int, ...]]:
    """The header and tokens of an open file, checked against `model` and the file's size."""
    if handle.read(len(MAGIC)) != MAGIC:
        raise BadFile("not a prefix file of this version")
    raw = handle.read(4)
    if len(raw) != 4:
        raise BadFile("truncated")
    (length,) = struct.unpack("<I", raw)
    if length > 4096:
        raise BadFile("bad header")
    try:
        header = json.loads(handle.read(length))
        n, kv_bytes = int(header["tokens"]), int(header["kv_bytes"])
    except (ValueError, KeyError, TypeError):
        raise BadFile("bad header") from None
    if header.get("model") != model:
        raise BadFile("another model's")
    if n <= 0 or kv_bytes <= 0 or len(MAGIC) + 4 + length + 4 * n + kv_bytes != size:
        raise BadFile("truncated or padded")
    tokens = np.frombuffer(handle.read(4 * n), dtype="<i4")
    return header, tuple(int(t) for t in tokens)


class DiskCache:
    """The stored prefixes of one model in one directory; safe to call from any thread."""

    def __init__(self, directory: Path, model: str, capacity_bytes: int, min_tokens: int,
                 events: Events | None = None, name: str = ""):
        self.directory = directory
        self.model = model  # the model's fingerprint: weights, llama.cpp build, settings
        self.capacity_bytes = capacity_bytes
        self.min_tokens = min_tokens
        self._events = events or Events()
        self._name = name
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._writes: queue.Queue[tuple[tuple[int, ...], bytes | memoryview] | None] = \
            queue.Queue(PENDING_WRITES)
        self._pending: set[tuple[int, ...]] = set()
        self._writer: threading.Thread | None = None

    # Start and stop -----------------------------------------------------------------------

    def open(self) -> None:
        """Read the stored prefixes' headers (rejecting bad files), then start the writer."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._entries = {}
        for path in self.directory.iterdir():
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a write a crash interrupted
            elif path.suffix == SUFFIX:
                try:
                    stat = path.stat()
                    with path.open("rb") as handle:
                        _, tokens = read_head(handle, self.model, stat.st_size)
                except (OSError, BadFile) as exc:
                    self._reject(path, exc)
                    continue
                self._entries[path.name] = Entry(path, tokens, stat.st_size, stat.st_mtime)
        with self._lock:
            self._evict()
        log.info("prefix_cache_opened", model=self._name, prefixes=len(self._entries),
                 bytes=self.size_bytes)
        self._writer = threading.Thread(target=self._write_loop, daemon=True,
                                        name=f"prefix-writer-{self._name}")
        self._writer.start()

    def close(self) -> None:
        """Finish the writes queued, then stop the writer."""
        if self._writer is not None:
            self._writes.put(None)
            self._writer.join()
            self._writer = None

    # Lookups ------------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        """Bytes of the stored files (read with the lock held, or before the writer starts:
        the writer thread changes the entries)."""
        return sum(e.size for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def best(self, prompt: Sequence[int]) -> tuple[Entry | None, int]:
        """The stored prefix sharing the most tokens with `prompt` (at least `min_tokens`),
        and how many it shares."""
        with self._lock:
            entries = list(self._entries.values())
        best, best_len = None, 0
        for entry in entries:
            n = common_prefix(entry.tokens, prompt)
            if n > best_len:
                best, best_len = entry, n
        return (best, best_len) if best_len >= self.min_tokens else (None, 0)

    def has(self, tokens: Sequence[int]) -> bool:
        """Whether exactly `tokens` is stored or being written."""
        key = tuple(tokens)
        with self._lock:
            return key in self._pending or file_name(self.model, key) in self._entries

    def load(self, entry: Entry) -> Snapshot | None:
        """Read and check `entry`'s file; None (and the file removed) if it cannot be used."""
        began = time.perf_counter()
        try:
            size = entry.path.stat().st_size
            with entry.path.open("rb") as handle:
                header, tokens = read_head(handle, self.model, size)
                kv = bytearray(header["kv_bytes"])  # loaded into llama.cpp without a copy
                if handle.readinto(kv) != len(kv):
                    raise BadFile("truncated")
            digest = hashlib.sha256(_packed(tokens))
            digest.update(kv)
            if digest.hexdigest() != header.get("sha256"):
                raise BadFile("its checksum does not match")
        except FileNotFoundError:
            with self._lock:
                self._entries.pop(entry.path.name, None)
            return None
        except (OSError, BadFile) as exc:
            self._reject(entry.path, exc)
            return None
        now = time.time()
        os.utime(entry.path, (now, now))
        with self._lock:
            entry.used_at = now
        self._events.loaded(time.perf_counter() - began)
        return Snapshot(tokens, kv)  # type: ignore[arg-type]  (a bytearray: no copy)

    # Writes -------------------------------------------------------------------------------

    def store(self, tokens: Sequence[int], kv: bytes | memoryview) -> bool:
        """Queue `tokens`' KV for writing (the caller's buffer is the writer's from now);
        False if it is stored already, too short, or the writer is busy."""
        key = tuple(tokens)
        if len(key) < self.min_tokens or len(kv) > self.capacity_bytes or self.has(key):
            return False
        with self._lock:
            self._pending.add(key)
        try:
            self._writes.put_nowait((key, kv))
        except queue.Full:
            with self._lock:
                self._pending.discard(key)
            log.info("prefix_cache_write_skipped", model=self._name, reason="writer busy")
            return False
        return True

    def _write_loop(self) -> None:
        while (item := self._writes.get()) is not None:
            tokens, kv = item
            try:
                self._write(tokens, kv)
            except OSError as exc:
                log.warning("prefix_cache_write_failed", model=self._name,
                            error=type(exc).__name__)
            finally:
                with self._lock:
                    self._pending.discard(tokens)

    def _write(self, tokens: tuple[int, ...], kv: bytes | memoryview) -> None:
        name = file_name(self.model, tokens)
        path = self.directory / name
        temporary = path.with_name(name + ".tmp")
        with temporary.open("wb") as handle:
            handle.write(encode_header(self.model, tokens, kv))
            handle.write(kv)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        size = path.stat().st_size
        with self._lock:
            self._entries[name] = Entry(path, tokens, size, time.time())
            self._evict()
        self._events.stored()
        log.info("prefix_cache_stored", model=self._name, tokens=len(tokens), bytes=size)

    def _evict(self) -> None:
        """Remove the least recently used files until the rest fit (lock held)."""
        while self._entries and self.size_bytes > self.capacity_bytes:
            oldest = min(self._entries.values(), key=lambda e: e.used_at)
            oldest.path.unlink(missing_ok=True)
            del self._entries[oldest.path.name]
            log.info("prefix_cache_evicted", model=self._name, tokens=len(oldest.tokens),
                     bytes=oldest.size)
        self._events.size(self.size_bytes)

    def _reject(self, path: Path, exc: Exception) -> None:
        log.warning("prefix_cache_file_ignored", model=self._name, file=path.name,
                    reason=str(exc) if isinstance(exc, BadFile) else type(exc).__name__)
        path.unlink(missing_ok=True)
        with self._lock:
            self._entries.pop(path.name, None)
            self._events.size(self.size_bytes)
        self._events.rejected()
