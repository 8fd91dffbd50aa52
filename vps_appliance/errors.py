"""The backend's error types; `app.error_middleware` maps them to HTTP in one place."""

from __future__ import annotations


class BackendError(Exception):
    """Base of every error the backend raises on purpose."""

    status = 500
    type = "server_error"
    code = "internal_error"


class ModelSourceError(BackendError):
    """A packaged model is missing a part or fails its pinned hash."""

    code = "model_unavailable"


class ModelLoadError(BackendError):
    """llama.cpp could not load a model file."""

    code = "model_unavailable"


class BadRequest(BackendError):
    """The request is malformed or asks for something out of range."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.param = param


class ContextLengthExceeded(BadRequest):
    """The prompt (plus max_tokens) does not fit the model's context window; `tokens` and
    `maximum` say by how much, where the prompt alone is too long."""

    code = "context_length_exceeded"

    def __init__(self, message: str, *, param: str | None = None, tokens: int = 0,
                 maximum: int = 0):
        super().__init__(message, param=param)
        self.tokens, self.maximum = tokens, maximum


class Unauthorized(BackendError):
    """Missing or wrong API key."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class NotFound(BackendError):
    """Unknown route or model name."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class PayloadTooLarge(BackendError):
    """The request body is over the configured limit."""

    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class HeaderTooLarge(BackendError):
    """The request line or a header is over the HTTP parser's limit."""

    status = 431
    type = "invalid_request_error"
    code = "header_too_large"


class ClientStalled(BackendError):
    """A streamed response could not be written within the write timeout."""

    status = 499  # the response has started; this only labels the request in metrics
    type = "invalid_request_error"
    code = "client_stalled"


class Overloaded(BackendError):
    """The model's wait queue is full; the client should retry later."""

    status = 503
    type = "server_error"
    code = "queue_full"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class NotSupported(BackendError):
    """The model cannot do what was asked (fill-in-the-middle without FIM tokens)."""

    status = 501
    type = "not_supported_error"
    code = "not_supported"
