"""Stop-sequence scanning over streamed text (pure): never emit text that may start a stop."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StopScanner:
    """Feed decoded text; get back what is safe to emit and whether a stop was hit."""

    stops: tuple[str, ...]
    _held: str = field(default="", init=False)
    stopped: bool = field(default=False, init=False)
    word: str = field(default="", init=False)  # the stop that was hit (the earliest in the text)

    def feed(self, text: str) -> str:
        """Add `text`; return the part that can be emitted now."""
        if self.stopped:
            return ""
        buf = self._held + text
        hits = [(i, s) for s in self.stops if (i := buf.find(s)) >= 0]
        if hits:
            at, self.word = min(hits, key=lambda hit: hit[0])
            self.stopped = True
            self._held = ""
            return buf[:at]
        hold = self._partial_stop_len(buf)
        self._held = buf[len(buf) - hold :] if hold else ""
        return buf[: len(buf) - hold]

    def flush(self) -> str:
        """At the end of generation: what was held back as a possible stop prefix."""
        out, self._held = ("" if self.stopped else self._held), ""
        return out

    def _partial_stop_len(self, buf: str) -> int:
        """Length of the longest suffix of `buf` that is a proper prefix of some stop."""
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buf)), best, -1):
                if buf.endswith(stop[:n]):
                    best = n
                    break
        return best
