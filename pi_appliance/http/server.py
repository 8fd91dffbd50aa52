"""uvicorn, configured the one way both the entry point and the tests serve the orchestrator:
no access log, no server header, and requests the HTTP parser rejects answered in our JSON
error shape instead of uvicorn's plain text."""

from __future__ import annotations

from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cerebrum import jsonwire
from cerebrum.openai import error_body

_MALFORMED = jsonwire.dump_bytes(error_body(
    "malformed HTTP request: the request line, headers or body framing could not be parsed",
    "invalid_request_error", "malformed_request"))


class JsonErrorsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering unparseable requests with a JSON 400."""

    def send_400_response(self, msg: str) -> None:
        """Same status and connection handling as uvicorn's, with a JSON body."""
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend([b"content-type: application/json\r\n",
                     b"content-length: " + str(len(_MALFORMED)).encode() + b"\r\n",
                     b"connection: close\r\n\r\n", _MALFORMED])
        self.transport.write(b"".join(head))
        self.transport.close()


def uvicorn_config(app: Any, **overrides: Any) -> uvicorn.Config:
    """The orchestrator's uvicorn settings (host/port or sockets come from the caller)."""
    options: dict[str, Any] = {"lifespan": "on", "log_config": None, "access_log": False,
                               "server_header": False, "http": JsonErrorsProtocol,
                               "timeout_graceful_shutdown": 5}
    return uvicorn.Config(app, **{**options, **overrides})
