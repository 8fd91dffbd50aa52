"""The context pipeline: reduce a user message to its instruction and the code it needs.

Each stage is a pure function in its own module, importable and timeable alone:
segment -> extract -> chunk -> dedup -> rank/select -> fit (budget) -> assemble.
"""

from .budget import estimate_tokens
from .config import PipelineConfig
from .errors import ConfigError, OverBudget, PipelineError
from .language import detect_language
from .prepare import Prepared, prepare

__all__ = ["ConfigError", "OverBudget", "PipelineConfig", "PipelineError", "Prepared",
           "detect_language", "estimate_tokens", "prepare"]
