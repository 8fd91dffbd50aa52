"""The backend's Prometheus metrics, on a registry owned by one app (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "cerebrum_backend_"


class Metrics:
    """Every metric the backend exports, prefixed `cerebrum_backend_`."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(PREFIX + "requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.prompt_tokens = Counter(PREFIX + "prompt_tokens", "Prompt tokens received",
                                     ["model"], registry=r)
        self.prompt_tokens_evaluated = Counter(
            PREFIX + "prompt_tokens_evaluated",
            "Prompt tokens actually evaluated (the rest came from the KV prompt cache)",
            ["model"], registry=r)
        self.completion_tokens = Counter(PREFIX + "completion_tokens",
                                         "Tokens generated, counted as each is sampled",
                                         ["model"], registry=r)
        self.drafted_tokens = Counter(
            PREFIX + "draft_tokens", "Speculative decoding: tokens drafted for verification",
            ["model"], registry=r)
        self.accepted_tokens = Counter(
            PREFIX + "draft_tokens_accepted",
            "Speculative decoding: drafted tokens the model agreed with (emitted without a "
            "decode step of their own)", ["model"], registry=r)
        self.draft_batch_limit = Gauge(
            PREFIX + "draft_batch_limit",
            "Speculative decoding: the largest verify batch whose logits are bit-identical to "
            "one-token steps on this CPU (drafts are one shorter); 0 until measured",
            ["model"], registry=r)
        self.ttft = Histogram(PREFIX + "time_to_first_token_seconds",
                              "Request start to first token", ["model"], registry=r,
                              buckets=(.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
        self.tokens_per_second = Histogram(
            PREFIX + "generation_tokens_per_second", "Decode speed of finished generations",
            ["model"], registry=r, buckets=(1, 2, 5, 10, 20, 40, 60, 80, 120, 200, 400))
        self.queue_depth = Gauge(PREFIX + "queue_depth", "Requests waiting for a model",
                                 ["model"], registry=r)
        self.sequences_in_use = Gauge(
            PREFIX + "sequences_in_use", "Sequences of the model's context holding a generation",
            ["model"], registry=r)
        self.prompt_tokens_pending = Gauge(
            PREFIX + "prompt_tokens_pending",
            "Prompt tokens admitted and not yet evaluated", ["model"], registry=r)
        self.batch_tokens = Histogram(
            PREFIX + "batch_tokens", "Tokens evaluated per decode step", ["model"], registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048))
        self.batch_sequences = Histogram(
            PREFIX + "batch_sequences", "Sequences taking part in a decode step", ["model"],
            registry=r, buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64))
        self.prefix_hits = Counter(
            PREFIX + "prefix_cache_hits",
            "Requests whose stable prefix (system prompt and tools) was loaded from disk",
            ["model"], registry=r)
        self.prefix_misses = Counter(
            PREFIX + "prefix_cache_misses",
            "Requests with a stable prefix found neither in memory nor on disk", ["model"],
            registry=r)
        self.prefix_stores = Counter(
            PREFIX + "prefix_cache_stores", "Prefixes written to disk", ["model"], registry=r)
        self.prefix_rejected = Counter(
            PREFIX + "prefix_cache_rejected",
            "Files on disk ignored and removed: truncated, corrupted or of another model",
            ["model"], registry=r)
        self.prefix_bytes = Gauge(
            PREFIX + "prefix_cache_bytes", "Bytes of stored prefixes on disk", ["model"],
            registry=r)
        self.prefix_load_seconds = Histogram(
            PREFIX + "prefix_cache_load_seconds",
            "Reading and checking a stored prefix (before loading it into a sequence)",
            ["model"], registry=r, buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.in_flight = Gauge(PREFIX + "in_flight", "Requests being served", registry=r)
        self.cancelled = Counter(PREFIX + "generations_cancelled",
                                 "Generations stopped early because the client went away",
                                 ["model"], registry=r)
        self.stalled_clients = Counter(
            PREFIX + "stalled_clients",
            "Streams dropped because the client read nothing within write_timeout",
            ["model"], registry=r)
        self.model_loaded = Gauge(PREFIX + "model_loaded", "1 when the model is resident",
                                  ["model"], registry=r)
        self.load_seconds = Gauge(PREFIX + "model_load_seconds", "Time the last load took",
                                  ["model"], registry=r)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
