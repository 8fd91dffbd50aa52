"""Cerebrum terminal REPL (built in a later issue)."""
