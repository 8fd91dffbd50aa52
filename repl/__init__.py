"""Cerebrum's terminal REPL: a streaming, raw-terminal client of the orchestrator."""
