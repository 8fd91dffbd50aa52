"""Pure formatting: the line redraw, the status line, stats and previews, colours."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from .sanitize import clean

DIM, RED, BOLD, RESET = "\x1b[2m", "\x1b[31m", "\x1b[1m", "\x1b[0m"
GREEN, CYAN = "\x1b[32m", "\x1b[36m"


@dataclass(frozen=True)
class Style:
    """ANSI styling, or none (NO_COLOR, or stdout not a terminal)."""

    colour: bool

    def dim(self, text: str) -> str:
        """Text in the terminal's dim intensity."""
        return f"{DIM}{text}{RESET}" if self.colour else text

    def error(self, text: str) -> str:
        """Text in red."""
        return f"{RED}{text}{RESET}" if self.colour else text

    def bold(self, text: str) -> str:
        """Text in bold."""
        return f"{BOLD}{text}{RESET}" if self.colour else text

    def green(self, text: str) -> str:
        """Text in green."""
        return f"{GREEN}{text}{RESET}" if self.colour else text

    def cyan(self, text: str) -> str:
        """Text in cyan."""
        return f"{CYAN}{text}{RESET}" if self.colour else text


def width(text: str) -> int:
    """Terminal columns of text: CJK wide and fullwidth count 2, combining marks 0."""
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def visible(text: str) -> str:
    """Text as shown on the edit line: newlines as ↵, other controls as ^X."""
    return "".join("↵" if c == "\n" else f"^{chr(ord(c) + 64)}" if ord(c) < 32 else c
                   for c in text)


def render(prompt: str, prompt_width: int, text: str, cursor: int, cols: int,
           prev_row: int) -> tuple[str, int]:
    """The bytes that redraw the edit line (wrapping at cols) and the cursor's new row."""
    cols = max(cols, 1)
    shown, before = visible(text), visible(text[:cursor])
    out = (f"\x1b[{prev_row}A" if prev_row else "") + "\r\x1b[J" + prompt + shown
    total = prompt_width + width(shown)
    if total and total % cols == 0:
        out += "\r\n"  # the terminal defers the wrap; make it happen so the rows add up
    end_row = total // cols
    row, col = divmod(prompt_width + width(before), cols)
    if end_row > row:
        out += f"\x1b[{end_row - row}A"
    out += "\r" + (f"\x1b[{col}C" if col else "")
    return out, row


def _num(value: Any, fmt: str, unit: str) -> str | None:
    return f"{value:{fmt}}{unit}" if isinstance(value, int | float) else None


QUEUE_SHOWN_MS = 100.0  # a shorter wait is the backend's step, not a queue


def status_line(stats: dict[str, Any], tokens: int, ttft_ms: float | None,
                tok_s: float | None) -> str:
    """After an answer: model · language · TTFT · tok/s · tokens · reduction, and the wait
    for the model's turn when there was one (other clients' requests ahead of it)."""
    ttft = stats.get("ttft_ms", ttft_ms) if stats.get("ttft_ms") is not None else ttft_ms
    rate = stats.get("tok_s") if stats.get("tok_s") is not None else tok_s
    reduction = stats.get("reduction")
    parts = [str(stats.get("model") or "?"), str(stats.get("language") or "?"),
             _num(ttft, ".0f", " ms TTFT") or "TTFT ?", _num(rate, ".1f", " tok/s") or "? tok/s",
             f"{tokens} tokens",
             _num(reduction * 100 if isinstance(reduction, int | float) else None, ".0f",
                  "% reduction") or "reduction ?"]
    queued = stats.get("queue_ms")
    if isinstance(queued, int | float) and queued >= QUEUE_SHOWN_MS:
        parts.insert(2, f"queued {queued / 1000:.1f} s")
    return "[" + " · ".join(parts) + "]"


def stats_text(stats: dict[str, Any]) -> str:
    """The last answer's `cerebrum` object, one `key: value` a line (scrubbed)."""
    return "\n".join(clean(f"{key}: {json.dumps(value, ensure_ascii=False)}")
                     for key, value in stats.items())


def preview_text(preview: dict[str, Any], style: Style) -> str:
    """A context preview: its stats in one line, then what would be sent (scrubbed)."""
    stats = preview.get("cerebrum") or {}
    head = (f"model {preview.get('model', '?')} · context {stats.get('context', '?')} "
            f"({stats.get('context_reason', '')}) · language {stats.get('language', '?')}")
    sent = []
    for message in preview.get("messages") or []:
        if isinstance(message, dict):
            sent.append(f"--- {message.get('role', '?')} ---\n{message.get('content', '')}")
    if not sent and preview.get("prompt"):
        sent.append(str(preview["prompt"]))
    return style.dim(clean(head)) + "\n" + clean("\n".join(sent))


def diff_text(diff: str, style: Style) -> str:
    """A unified diff for the terminal: scrubbed, headers bold, hunks cyan, - red, + green."""
    out = []
    for line in clean(diff.rstrip("\n")).split("\n"):
        if line.startswith(("diff --git", "--- ", "+++ ", "new file")):
            out.append(style.bold(line))
        elif line.startswith("@@"):
            out.append(style.cyan(line))
        elif line.startswith("-"):
            out.append(style.error(line))
        elif line.startswith("+"):
            out.append(style.green(line))
        else:
            out.append(line)
    return "\n".join(out)
