"""Anthropic's request headers, checked (pure): the tier reads them, this says whether they
are well formed and which key the client sent.

- `anthropic-version`: a date (`2023-06-01`, what every SDK and Claude Code send); absent is
  allowed, as curl users leave it out. The answer is the same whatever the date.
- `anthropic-beta`: comma-separated feature names (Claude Code sends several, such as
  `claude-code-20250219,interleaved-thinking-2025-05-14`); a name this server does not know
  is never refused, since betas only unlock fields, and each field is judged on its own.
- The key: `x-api-key` (the SDK's `api_key`, Claude Code's ANTHROPIC_API_KEY) or
  `Authorization: Bearer` (the SDK's `auth_token`, Claude Code's ANTHROPIC_AUTH_TOKEN); both
  may come, and then must agree.

A malformed header is an InvalidRequest whose `param` names it; whether the key is right is
the tier's to judge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import InvalidRequest

VERSION = "anthropic-version"
BETA = "anthropic-beta"
API_KEY = "x-api-key"
AUTHORIZATION = "authorization"
MAX_BETAS = 64
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BETA_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_BEARER = re.compile(r"bearer +(\S+)", re.IGNORECASE)
_KEY = re.compile(r"[\x21-\x7e]{1,1024}")  # printable ASCII, no spaces


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    # aiohttp's headers are case-insensitive, Falcon's upper-cased, a test's a plain dict.
    return {name.lower(): value for name, value in headers.items()}


def betas(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The beta names the client sent (none: absent)."""
    value = _lowered(headers).get(BETA)
    if value is None:
        return ()
    names = tuple(name.strip() for name in value.split(","))
    if len(names) > MAX_BETAS or not all(_BETA_NAME.fullmatch(n) for n in names):
        raise InvalidRequest(f"'{BETA}' must be up to {MAX_BETAS} comma-separated names of "
                             "letters, digits, '.', '_' or '-'", BETA)
    return names


def check_headers(headers: Mapping[str, str]) -> str | None:
    """Check Anthropic's headers; the client's key, or None when it sent none."""
    lowered = _lowered(headers)
    version = lowered.get(VERSION)
    if version is not None and not _DATE.fullmatch(version.strip()):
        raise InvalidRequest(f"'{VERSION}' must be a date such as 2023-06-01", VERSION)
    betas(lowered)
    key = lowered.get(API_KEY)
    if key is not None and not _KEY.fullmatch(key.strip()):
        raise InvalidRequest(f"'{API_KEY}' must be a key of printable characters", API_KEY)
    authorization = lowered.get(AUTHORIZATION)
    if authorization is None:
        return key.strip() if key is not None else None
    bearer = _BEARER.fullmatch(authorization.strip())
    if bearer is None or not _KEY.fullmatch(bearer.group(1)):
        raise InvalidRequest(f"'{AUTHORIZATION}' must be 'Bearer <key>'", AUTHORIZATION)
    if key is not None and key.strip() != bearer.group(1):
        raise InvalidRequest(f"'{API_KEY}' and '{AUTHORIZATION}' name different keys: send "
                             "one", AUTHORIZATION)
    return bearer.group(1)
