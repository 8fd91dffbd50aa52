"""The client's API key: `--key-file` or `CEREBRUM_CLIENT_KEY`, never the services' list.

The services read `CEREBRUM_API_KEYS`, a comma-separated list of keys they accept; the
client sends one key, so its variable has a name of its own. A variable that looks right
but is not read here gets a one-line hint instead of being used behind the user's back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cerebrum.config import ConfigError, read_keys

from .errors import BadSetting

VARIABLE = "CEREBRUM_CLIENT_KEY"
# Names a user may reach for, and why the client does not read them.
LOOKALIKES = {"CEREBRUM_API_KEYS": "the services' list of accepted keys",
              "CEREBRUM_API_KEY": "this client's former variable"}


def client_key(environ: Mapping[str, str], key_file: Path | None) -> str | None:
    """The key to send: the key file's first key, else CEREBRUM_CLIENT_KEY, else none."""
    if key_file is not None:
        try:
            keys = read_keys(key_file, "--key-file")
        except ConfigError as exc:
            raise BadSetting(str(exc)) from None
        if not keys:
            raise BadSetting(f"--key-file: no key in {key_file}")
        return keys[0]
    return environ.get(VARIABLE, "").strip() or None


def hint(environ: Mapping[str, str], key: str | None) -> str | None:
    """One line for stderr when no key is set but a look-alike variable is; else None."""
    if key is not None:
        return None
    for name, what in LOOKALIKES.items():
        if environ.get(name, "").strip():
            return (f"cerebrum: {name} ({what}) is not read here, so no key is sent: "
                    f"set {VARIABLE}=<one key> or pass --key-file PATH")
    return None
