"""Pipe mode: stdin is the code, -m the instruction, the answer goes to stdout."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from . import client, commands
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
    try:
        prompt = prompt_of("" if stdin.isatty() else stdin.read(), message)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cerebrum: cannot read stdin ({type(exc).__name__})", file=err)
        return 1
    if not prompt.strip():
        print("cerebrum: nothing to send: pipe code in and give -m/--message", file=err)
        return 2

    def emit(text: str) -> None:
        out.write(text)
        out.flush()

    answer = client.Answer()
    try:
        asyncio.run(client.stream_chat(url, commands.request_body(prompt, opts), emit,
                                       answer, api_key))
    except ReplError as exc:
        print(f"cerebrum: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print("cerebrum: cancelled", file=err)
        return 130
    except BrokenPipeError:
        return 1
    if answer.text and not answer.text.endswith("\n"):
        out.write("\n")
    return 0


def main_pipe(url: str, api_key: str | None, message: str | None,
              opts: commands.Options) -> int:
    """Pipe mode on this process's standard streams."""
    return run(url, api_key, message, opts, sys.stdin, sys.stdout, sys.stderr)
