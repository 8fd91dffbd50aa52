"""`cerebrum` / `python -m repl`: the terminal client of the orchestrator."""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from pathlib import Path

from . import commands, key
from .app import interactive
from .errors import BadSetting
from .pipe import main_pipe

DEFAULT_URL = "http://127.0.0.1:7000"


def checked_url(url: str) -> str:
    """The orchestrator URL without a trailing slash, or BadSetting naming --url."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError when out of range)
    except ValueError as exc:
        raise BadSetting(f"--url: not a valid URL: {url!r} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadSetting(f"--url: expected http://HOST:PORT, got {url!r}")
    return url.rstrip("/")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; a REPL on a terminal, pipe mode otherwise."""
    parser = argparse.ArgumentParser(
        prog="cerebrum", description="Streaming REPL for the Cerebrum orchestrator, FILEs "
        "attached. With -m (or piped): stdin or the FILEs are the code, -m the instruction, "
        "the answer (or with --diff a unified diff of the FILEs) goes to stdout.",
        epilog=f"The API key sent to the orchestrator is the first key in --key-file, else "
        f"{key.VARIABLE}. (CEREBRUM_API_KEYS is the services' list of accepted keys: "
        "the client does not read it.)")
    parser.add_argument("--url", default=os.environ.get("CEREBRUM_URL") or DEFAULT_URL,
                        help=f"orchestrator URL (env CEREBRUM_URL; default {DEFAULT_URL})")
    parser.add_argument("--key-file", type=Path, metavar="PATH",
                        help="a file holding the API key (one key a line, # comments; the "
                        f"first is sent); overrides {key.VARIABLE}")
    parser.add_argument("-m", "--message", help="the instruction (pipe mode)")
    parser.add_argument("--model", default="auto", help="a model or route name, or auto")
    parser.add_argument("--lang", default="auto", choices=(*commands.LANGUAGES, "auto"))
    parser.add_argument("--raw", action="store_true", help="skip the context pipeline")
    parser.add_argument("--diff", action="store_true", help="with -m and FILEs: print a "
                        "unified diff of the FILEs the answer changes (for git apply)")
    parser.add_argument("files", nargs="*", metavar="FILE", help="files to attach (paths "
                        "relative to the working directory; then stdin is not read)")
    args = parser.parse_args(argv)
    try:
        url = checked_url(args.url)
        api_key = key.client_key(os.environ, args.key_file)
    except BadSetting as exc:
        print(f"cerebrum: {exc}", file=sys.stderr)
        return 2
    if (hint := key.hint(os.environ, api_key)) is not None:
        print(hint, file=sys.stderr)
    if args.diff and args.message is None:
        print("cerebrum: --diff needs -m/--message (pipe mode)", file=sys.stderr)
        return 2
    if sys.stdin.isatty() and sys.stdout.isatty() and args.message is None:
        return interactive(url, api_key, args.files)
    opts = commands.Options(model=args.model, language=args.lang, raw=args.raw)
    return main_pipe(url, api_key, args.message, opts, tuple(args.files), args.diff)


if __name__ == "__main__":
    sys.exit(main())
