"""What can go wrong talking to the orchestrator, each a one-line message."""

from __future__ import annotations


class ReplError(Exception):
    """Base: str(exc) is the one line the user sees."""


class BadSetting(ReplError):
    """A command-line option or environment variable cannot be used."""


class Unreachable(ReplError):
    """The orchestrator could not be reached."""


class Rejected(ReplError):
    """The orchestrator answered with an error status."""

    def __init__(self, message: str, *, status: int, code: str = "",
                 retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class StreamFailed(ReplError):
    """An error event arrived mid-stream."""


class Malformed(ReplError):
    """The stream was not OpenAI-style SSE."""
