"""The raw terminal: modes, bracketed paste, and keys read as readchar names them."""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import termios
from collections.abc import Iterator
from dataclasses import dataclass

PASTE_ON, PASTE_OFF = "\x1b[?2004h", "\x1b[?2004l"
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"
ESC = "\x1b"


@dataclass(frozen=True)
class Paste:
    """A bracketed paste, delivered whole."""

    text: str


def _mode(fd: int, *, signals: bool) -> list:
    attrs = termios.tcgetattr(fd)
    attrs[0] &= ~(termios.IXON | termios.ICRNL | termios.INLCR)
    attrs[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN)
    if not signals:
        attrs[3] &= ~termios.ISIG
    attrs[6][termios.VMIN], attrs[6][termios.VTIME] = 1, 0
    return attrs


@contextlib.contextmanager
def raw(fd: int, *, signals: bool = False) -> Iterator[None]:
    """No echo, no line buffering; Ctrl-C a key (signals=False) or SIGINT (signals=True)."""
    saved = termios.tcgetattr(fd)
    termios.tcsetattr(fd, termios.TCSADRAIN, _mode(fd, signals=signals))
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class Keys:
    """Keys from a terminal fd: characters, escape sequences (readchar.key's names), pastes."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = ""
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def _fill(self, timeout: float | None) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        data = os.read(self.fd, 65536)
        if not data:
            raise EOFError
        self.buf += self.decoder.decode(data)
        return True

    def _next(self, timeout: float | None = None) -> str | None:
        while not self.buf:
            if not self._fill(timeout):
                return None
        char, self.buf = self.buf[0], self.buf[1:]
        return char

    def read(self) -> str | Paste:
        """The next key: a character, an escape sequence, or a whole paste."""
        char = self._next()
        assert char is not None
        if char != ESC:
            return char
        second = self._next(0.05)
        if second is None:
            return ESC
        if second not in "[O":
            return ESC + second
        seq = ESC + second
        while True:
            nxt = self._next(0.05)
            if nxt is None:
                return seq
            seq += nxt
            if "\x40" <= nxt <= "\x7e" and len(seq) > 2:
                break
        return self._paste() if seq == PASTE_START else seq

    def _paste(self) -> Paste:
        while PASTE_END not in self.buf:
            self._fill(None)
        text, _, self.buf = self.buf.partition(PASTE_END)
        return Paste(text.replace("\r\n", "\n").replace("\r", "\n"))
