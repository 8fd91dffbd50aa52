"""The programming languages Cerebrum routes, reduces and lets a user pick."""

from __future__ import annotations

LANGUAGES = ("python", "javascript", "typescript", "rust", "c", "cpp")
