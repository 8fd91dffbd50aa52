"""Bearer API keys, compared in constant time."""

from __future__ import annotations

import hmac


def bearer_ok(header: str, keys: tuple[str, ...]) -> bool:
    """Whether an Authorization header carries one of `keys` ("Bearer <key>")."""
    scheme, _, given = header.partition(" ")
    ok = False
    for key in keys:  # compare against every key so timing says nothing about which
        ok |= hmac.compare_digest(given.strip().encode(), key.encode())
    return scheme.lower() == "bearer" and ok
