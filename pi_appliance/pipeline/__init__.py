"""The context pipeline: reduce a user message to its instruction and the code it needs.

Each stage is a pure function in its own module, importable and timeable alone:
segment -> extract -> chunk -> dedup -> rank/select -> fit (budget) -> assemble; a chat's
earlier turns are fitted around the current message (`conversation`).
"""

from .budget import TOKEN_ESTIMATES, TokenEstimate, estimate_tokens
from .config import PipelineConfig
from .conversation import prepare_chat
from .errors import ConfigError, OverBudget, PipelineError
from .language import detect_language
from .prepare import OlderTurns, Prepared, prepare

__all__ = ["TOKEN_ESTIMATES", "ConfigError", "OlderTurns", "OverBudget", "PipelineConfig",
           "PipelineError", "Prepared", "TokenEstimate", "detect_language", "estimate_tokens",
           "prepare", "prepare_chat"]
