"""A child process in a real pty seen through pyte: assert on what the terminal shows.

Everything the child writes is fed to a `pyte` terminal emulator, so a test reads the
rendered screen and never depends on how a redraw happens to be split into bytes. Waits
are for a state of the screen, under a generous deadline that only catches hangs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pexpect
import pyte

Target = str | re.Pattern[str] | Callable[["Screen"], Any]


class _Emulator(pyte.Screen):
    """pyte's screen, counting the lines scrolled off the top (for absolute row numbers)."""

    def __init__(self, columns: int, lines: int):
        super().__init__(columns, lines)
        self.scrolled = 0
        self.mark = 0  # absolute row where the output of the last input starts

    def index(self) -> None:
        if self.cursor.y == (self.margins.bottom if self.margins else self.lines - 1):
            self.scrolled += 1
        super().index()

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        if how in (2, 3):  # the whole screen is blank: nothing older is left to match
            self.mark = min(self.mark, self.scrolled)
        super().erase_in_display(how, *args, **kwargs)


class Screen:
    """A pexpect child (bytes mode) and the terminal screen its output draws."""

    def __init__(self, child: pexpect.spawn, rows: int, cols: int):
        self.child = child
        self.emulator = _Emulator(cols, rows)
        self.stream = pyte.ByteStream(self.emulator)
        self.raw = bytearray()  # every byte read from the pty, for what no screen shows
        self.eof = False

    @classmethod
    def spawn(cls, argv: list[str], *, cwd: str, env: dict[str, str], rows: int = 40,
              cols: int = 200) -> Screen:
        """Start argv in a new pty of rows x cols."""
        child = pexpect.spawn(argv[0], argv[1:], cwd=cwd, env=env, dimensions=(rows, cols))
        return cls(child, rows, cols)

    def send(self, keys: str) -> None:
        """Type keys; what `wait_for` reads next starts at the cursor's row."""
        self.emulator.mark = self.emulator.scrolled + self.emulator.cursor.y
        self.child.send(keys)

    @property
    def lines(self) -> list[str]:
        """The screen's rows, trailing blanks removed."""
        return [line.rstrip() for line in self.emulator.display]

    @property
    def text(self) -> str:
        """The whole screen, one row a line."""
        return "\n".join(self.lines).rstrip("\n")

    @property
    def recent(self) -> str:
        """The screen from the row where the last input was typed down to the bottom."""
        first = max(self.emulator.mark - self.emulator.scrolled, 0)
        return "\n".join(self.lines[first:]).rstrip("\n")

    @property
    def cursor_line(self) -> str:
        """The row the cursor is on (the edit line while the REPL waits for input)."""
        return self.lines[self.emulator.cursor.y]

    @property
    def title(self) -> str:
        """The window title, as escape sequences would have set it."""
        return self.emulator.title

    def after(self, marker: str) -> str:
        """The recent screen after the last `marker` on it ("" when it is not there)."""
        recent = self.recent
        at = recent.rfind(marker)
        return "" if at < 0 else recent[at + len(marker):]

    def wait_for(self, target: Target, timeout: float = 60) -> Any:
        """Read until `target` holds, or fail showing the screen.

        A string must appear in `recent`, a pattern match there; a callable is called with
        this screen and must return something true. Returns what matched.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self._check(target)
            if found:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                why = "the child exited" if self.eof else f"{timeout} s passed"
                raise AssertionError(f"{why} before the screen showed {target!r}; "
                                     f"it shows:\n{self.text}")
            self._read(min(left, 1.0))

    def wait_exit(self, timeout: float = 60) -> int:
        """Read until the child closes the terminal; its exit status."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            assert left > 0, f"the child did not exit; the screen shows:\n{self.text}"
            self._read(min(left, 1.0))
        self.child.close()
        assert self.child.exitstatus is not None, f"killed by {self.child.signalstatus}"
        return self.child.exitstatus

    def close(self) -> None:
        """Kill the child if it still runs."""
        self.child.close(force=True)

    def _check(self, target: Target) -> Any:
        if isinstance(target, str):
            return target if target in self.recent else None
        if isinstance(target, re.Pattern):
            return target.search(self.recent)
        return target(self)

    def _read(self, timeout: float) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            self.eof = True
            return
        self.raw += data
        self.stream.feed(data)
