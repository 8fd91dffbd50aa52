"""`cerebrum-backend`: parse arguments, build settings, serve."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

from cerebrum import cli, logs

from .settings import load_settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cerebrum-backend` console script."""
    started = cli.start("cerebrum-backend", "Cerebrum inference backend (OpenAI-compatible).",
                        9000, load_settings, argv)
    if started is None:
        return 2
    settings, sock = started
    # Found, not imported: the first request that needs a model imports it (http/runtime.py).
    if importlib.util.find_spec("llama_cpp") is None:
        print("cerebrum-backend: llama_cpp is missing: pip install 'cerebrum[backend]'",
              file=sys.stderr)
        return 2
    from .http.app import make_app
    from .http.server import serve

    logs.configure(settings.log_level)
    app = make_app(settings)
    asyncio.run(serve(app, host=settings.host, port=settings.port,
                      idle_exit=settings.idle_exit, sock=sock))
    return 0


if __name__ == "__main__":
    sys.exit(main())
