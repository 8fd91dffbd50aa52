"""Cerebrum inference backend: llama.cpp models behind an OpenAI-compatible SSE API."""

__version__ = "0.1.0"
