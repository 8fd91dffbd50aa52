"""Pipe mode: stdin is the code, -m the instruction, the answer goes to stdout.

On a terminal the answer is scrubbed of control and escape sequences (as in the REPL);
redirected to a file or a pipe it is written as the model sent it (only lone surrogates,
which cannot be encoded, become U+FFFD): there it is data, e.g. the converted source file.
Messages on stderr are always scrubbed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TextIO

from . import client, commands, sanitize
from .errors import ReplError


def prompt_of(code: str, message: str | None) -> str:
    """The prompt: the instruction, then the code in a fence (or whichever is given)."""
    code = code.strip("\n")
    if not message:
        return code
    if not code:
        return message
    return f"{message}\n\n```\n{code}\n```"


def run(url: str, api_key: str | None, message: str | None, opts: commands.Options,
        stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Stream one answer to `out`; 0 on success, else 1 (or 130 on Ctrl-C) and one line."""

    def fail(text: str) -> None:
        print(f"cerebrum: {sanitize.clean(text)}", file=err)

    try:
        return _run(url, api_key, message, opts, stdin, out, fail)
    except KeyboardInterrupt:
        fail("cancelled")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # never a traceback: one line, like every other error
        fail(f"internal error: {type(exc).__name__}: {exc}")
        return 1


def _run(url: str, api_key: str | None, message: str | None, opts: commands.Options,
         stdin: TextIO, out: TextIO, fail: Callable[[str], None]) -> int:
    try:
        prompt = prompt_of("" if stdin.isatty() else stdin.read(), message)
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read stdin ({type(exc).__name__})")
        return 1
    if not prompt.strip():
        fail("nothing to send: pipe code in and give -m/--message")
        return 2
    scrub = sanitize.Scrubber() if out.isatty() else sanitize.encodable
    last = ""

    def emit(piece: str) -> None:
        nonlocal last
        text = scrub(piece)
        if text:
            out.write(text)
            out.flush()
            last = text[-1]

    try:
        asyncio.run(client.stream_chat(url, commands.request_body(prompt, opts), emit,
                                       client.Answer(), api_key))
    except ReplError as exc:
        fail(str(exc))
        return 1
    if last and last != "\n":
        out.write("\n")
    return 0


def main_pipe(url: str, api_key: str | None, message: str | None,
              opts: commands.Options) -> int:
    """Pipe mode on this process's standard streams."""
    return run(url, api_key, message, opts, sys.stdin, sys.stdout, sys.stderr)
