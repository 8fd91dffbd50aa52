"""The orchestrator's error types; `http/app.py` maps them to HTTP in one place."""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base of every error the orchestrator raises on purpose."""

    status = 500
    type = "server_error"
    code = "internal_error"
    param: str | None = None


class BadRequest(OrchestratorError):
    """The request is malformed or asks for something out of range."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.code = code or self.code
        self.param = param


class Unauthorized(OrchestratorError):
    """Missing or wrong API key."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class NotFound(OrchestratorError):
    """Unknown route, endpoint or model."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.code = code or self.code


class PayloadTooLarge(OrchestratorError):
    """The request body is over the configured limit."""

    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class HeadersTooLarge(OrchestratorError):
    """The request's headers together are over the configured limit."""

    status = 431
    type = "invalid_request_error"
    code = "headers_too_large"


class Unavailable(OrchestratorError):
    """Shed or no healthy backend: retry later."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.code = code or self.code


class UpstreamError(OrchestratorError):
    """A backend failed: refused, timed out, 5xx, or a broken stream."""

    status = 502
    code = "upstream_error"

    def __init__(self, message: str, *, code: str | None = None, counts: bool = True,
                 retry_after: int | None = None):
        super().__init__(message)
        self.code = code or self.code
        self.counts = counts  # whether it is the backend's fault (breaker failure)
        self.retry_after = retry_after  # a busy backend's own Retry-After, when it sent one


class UpstreamRejected(OrchestratorError):
    """The backend refused the request itself (4xx): the client's problem, passed through."""

    type = "invalid_request_error"

    def __init__(self, status: int, message: str, code: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.param = param  # the field the backend named, passed on as is


class ClientStalled(Exception):
    """The client stopped reading: a write did not complete within `write_timeout`."""
