"""Cerebrum orchestrator for the Raspberry Pi CM4 (built in a later issue)."""
