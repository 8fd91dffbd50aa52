"""API keys, compared in constant time: `Authorization: Bearer <key>` (OpenAI's clients) or
`x-api-key: <key>` (Anthropic's)."""

from __future__ import annotations

import hmac


def _known(given: str, keys: tuple[str, ...]) -> bool:
    # A header value that is not UTF-8 comes from aiohttp as surrogate escapes, which a
    # strict encode refuses: it is no key, not an error.
    sent = given.strip().encode("utf-8", "surrogatepass")
    ok = False
    for key in keys:  # compare against every key so timing says nothing about which
        ok |= hmac.compare_digest(sent, key.encode())
    return ok


def bearer_ok(header: str, keys: tuple[str, ...]) -> bool:
    """Whether an Authorization header carries one of `keys` ("Bearer <key>")."""
    scheme, _, given = header.partition(" ")
    return _known(given, keys) and scheme.lower() == "bearer"


def key_ok(authorization: str, api_key: str, keys: tuple[str, ...]) -> bool:
    """Whether a request carries one of `keys`, as a bearer token or as `x-api-key`."""
    return bearer_ok(authorization, keys) or (bool(api_key) and _known(api_key, keys))
