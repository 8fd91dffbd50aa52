"""The pipeline's knobs: one frozen dataclass with defaults, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .errors import ConfigError


@dataclass(frozen=True)
class PipelineConfig:
    """Thresholds and sizes of the context pipeline; the defaults are the issue's bar."""

    chunk_threshold: int = 1500  # code chars under which nothing is chunked (prompt goes raw)
    window_chars: int = 1000  # window size for languages without a syntax splitter
    window_overlap: int = 150
    max_chunk_chars: int = 3000  # a function over this is split inside, at statement starts
    top_k: int = 3  # units (functions, classes the instruction names, …) kept
    min_reduction: float = 0.20  # under this the raw prompt is sent instead
    near_duplicate: float = 0.80  # Jaccard of token 3-shingles that counts as a repeat
    canonicalize_identifiers: bool = True  # renamed copies count as exact repeats
    dedup_min_chars: int = 80  # tiny chunks (getters, `}`) are never collapsed
    dependency_max_chars: int = 600  # imports/constants/small types a kept chunk uses, if cheap
    bm25_k1: float = 1.2
    bm25_b: float = 0.75

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if value < 0:
                raise ConfigError(f"pipeline.{f.name} must be >= 0, got {value}")
        for name in ("min_reduction", "near_duplicate", "bm25_b"):
            if getattr(self, name) > 1:
                raise ConfigError(f"pipeline.{name} must be between 0 and 1, "
                                  f"got {getattr(self, name)}")
        if self.window_chars < 1 or self.window_overlap >= self.window_chars:
            raise ConfigError("pipeline.window_overlap must be smaller than pipeline.window_chars "
                              f"({self.window_overlap} >= {self.window_chars})")
        if self.top_k < 1:
            raise ConfigError(f"pipeline.top_k must be >= 1, got {self.top_k}")
