"""The context pipeline's error types; the service maps them to HTTP in one place."""

from __future__ import annotations

from cerebrum.config import ConfigError

__all__ = ["ConfigError", "OverBudget", "PipelineError"]


class PipelineError(Exception):
    """Base of every error the context pipeline raises on purpose."""


class OverBudget(PipelineError):
    """Even the smallest prompt the pipeline can send does not fit the token budget."""

    def __init__(self, needed: int, budget: int, *, what: str = "the instruction alone"):
        super().__init__(f"{what} needs {needed} tokens, {needed - budget} over the budget "
                         f"of {budget}")
        self.needed = needed
        self.budget = budget
        self.over = needed - budget
