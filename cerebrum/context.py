"""Per-request facts both services keep: the request id and when the request arrived."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(given: str | None) -> str:
    """The client's X-Request-ID when it is sane (so its logs and ours match), else a new one."""
    return given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


@dataclass
class RequestContext:
    """Per-request facts the service logs: id, start time, and fields handlers add."""

    request_id: str
    started: float
    log: dict[str, Any] = field(default_factory=dict)
