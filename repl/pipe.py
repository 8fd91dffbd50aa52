"""Pipe mode: stdin (or the files named) is the code, -m the instruction, the answer goes to
stdout; with --diff, a unified diff of the files named instead (`… --diff | git apply`).

Files named on the command line are attached as in the REPL (`repl.attach`: paths relative
to the working directory, 256 KiB each, no binary files); stdin is then not read.

On a terminal the answer is scrubbed of control and escape sequences (as in the REPL);
redirected to a file or a pipe it is written as the model sent it (only lone surrogates,
which cannot be encoded, become U+FFFD): there it is data, e.g. the converted source file.
Messages on stderr are always scrubbed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from . import attach, blocks, client, commands, conversation, sanitize
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
        stdin: TextIO, out: TextIO, err: TextIO, files: tuple[str, ...] = (),
        diff: bool = False, cwd: Path | None = None) -> int:
    """Stream one answer (or print the diff) to `out`; 0 on success, else 1 (2 for bad
    input, 130 on Ctrl-C) and one line."""

    def fail(text: str) -> None:
        print(f"cerebrum: {sanitize.clean(text)}", file=err)

    try:
        if files or diff:
            return _run_files(url, api_key, message, opts, list(files), diff,
                              cwd or Path.cwd(), out, fail)
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
    return _stream(url, api_key, commands.request_body([{"role": "user", "content": prompt}],
                                                       opts), out, fail)


def _stream(url: str, api_key: str | None, body: dict, out: TextIO,
            fail: Callable[[str], None]) -> int:
    """Stream the answer to `out` (scrubbed on a terminal, as sent elsewhere)."""
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
        asyncio.run(client.stream_chat(url, body, emit, client.Answer(), api_key))
    except ReplError as exc:
        fail(str(exc))
        return 1
    if last and last != "\n":
        out.write("\n")
    return 0


def _run_files(url: str, api_key: str | None, message: str | None, opts: commands.Options,
               files: list[str], diff: bool, cwd: Path, out: TextIO,
               fail: Callable[[str], None]) -> int:
    """Pipe mode with files: the answer streamed, or with `diff` the patch of the files."""
    if not files:
        fail("--diff needs the files to diff against: cerebrum -m \"…\" --diff FILE…")
        return 2
    try:
        attached = [attach.read(cwd, f) for f in files]
    except attach.AttachError as exc:
        fail(str(exc))
        return 2
    content = attach.user_content(message or "", attached).lstrip("\n")
    body = commands.request_body(conversation.messages((), content, with_files=True), opts)
    if not diff:
        return _stream(url, api_key, body, out, fail)
    answer = client.Answer()
    try:
        asyncio.run(client.stream_chat(url, body, lambda _: None, answer, api_key))
        patch = ""
        for name, block in blocks.pairs(answer.text, [a.name for a in attached]):
            if not block.closed:
                fail(f"{name}: the answer's code block is cut off (no closing fence); "
                     "no diff printed")
                return 1
            old = next((a.text for a in attached if a.name == name), None)
            patch += blocks.unified(old, blocks.new_text(old, block), name)
    except ReplError as exc:
        fail(str(exc))
        return 1
    if not patch:
        fail("the answer changes none of the files")
        return 1
    out.write(sanitize.clean(patch) if out.isatty() else sanitize.encodable(patch))
    out.flush()
    return 0


def main_pipe(url: str, api_key: str | None, message: str | None,
              opts: commands.Options, files: tuple[str, ...] = (), diff: bool = False) -> int:
    """Pipe mode on this process's standard streams."""
    return run(url, api_key, message, opts, sys.stdin, sys.stdout, sys.stderr, files, diff)
