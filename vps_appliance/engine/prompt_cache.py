"""A per-model RAM cache of KV snapshots, so alternating prompts reuse their prefixes.

Each sequence of a model's context keeps the KV of its last prompt and answer while it is idle,
and a request takes the idle sequence sharing the longest prefix with its prompt. This cache
keeps the KV of sequences whose cells were taken for other prompts (llama.cpp's per-sequence
state, which is the KV alone), evicting the least recently used snapshot when over its byte
budget; a snapshot loads into any sequence.
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n], dtype=np.int64) != np.asarray(b[:n], dtype=np.int64))
    return int(diff[0]) if diff.size else n


@dataclass(frozen=True)
class Snapshot:
    """The KV of one evaluated token sequence."""

    tokens: tuple[int, ...]
    kv: bytes


class PromptCache:
    """LRU of KV snapshots keyed by their token sequences, bounded in bytes (the decode loop
    changes it; `longest` may be asked from another thread)."""

    def __init__(self, capacity_bytes: int):
        self.capacity_bytes = capacity_bytes
        self._entries: OrderedDict[tuple[int, ...], Snapshot] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        """Bytes held now."""
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def best(self, prompt: Sequence[int]) -> tuple[Snapshot | None, int]:
        """The snapshot sharing the longest prefix with `prompt`, and that prefix's length."""
        with self._lock:
            best, best_len = None, 0
            for snap in self._entries.values():
                n = common_prefix(snap.tokens, prompt)
                if n > best_len:
                    best, best_len = snap, n
            if best is not None:
                self._entries.move_to_end(best.tokens)
            return best, best_len

    def longest(self, prompt: Sequence[int]) -> int:
        """The longest prefix of `prompt` a snapshot holds (its use not counted)."""
        with self._lock:
            snaps = list(self._entries.values())
        return max((common_prefix(s.tokens, prompt) for s in snaps), default=0)

    def put(self, snap: Snapshot) -> None:
        """Insert a snapshot, replacing one with the same tokens and evicting the oldest."""
        if len(snap.kv) > self.capacity_bytes:
            return
        with self._lock:
            old = self._entries.pop(snap.tokens, None)
            if old is not None:
                self._size -= len(old.kv)
            self._entries[snap.tokens] = snap
            self._size += len(snap.kv)
            while self._size > self.capacity_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted.kv)


def state(ctx: Any, seq: int) -> memoryview | None:
    """A copy of sequence `seq`'s KV (llama.cpp's per-sequence state), None if it fails."""
    size = llama_cpp.llama_state_seq_get_size(ctx, seq)
    buf = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, seq)
    return memoryview(buf).cast("B")[:written] if written else None


def snapshot(ctx: Any, seq: int, tokens: Sequence[int]) -> Snapshot | None:
    """Copy sequence `seq`'s KV, which holds `tokens`."""
    if not tokens:
        return None
    kv = state(ctx, seq)
    return Snapshot(tuple(tokens), kv.tobytes()) if kv is not None else None


def restore(ctx: Any, seq: int, snap: Snapshot) -> bool:
    """Load `snap` into sequence `seq` (replacing what it held); False if loading failed,
    and the sequence is then empty."""
    array = ctypes.c_uint8 * len(snap.kv)
    buf = array.from_buffer(snap.kv) if isinstance(snap.kv, bytearray) else \
        array.from_buffer_copy(snap.kv)
    if llama_cpp.llama_state_seq_set_data(ctx, buf, len(snap.kv), seq) == 0:
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), seq, -1, -1)
        return False
    return True
