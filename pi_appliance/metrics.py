"""The orchestrator's Prometheus metrics, on a registry owned by one app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "cerebrum_orchestrator_"
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class Metrics:
    """Every metric the orchestrator exports, prefixed `cerebrum_orchestrator_`."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(PREFIX + "requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.shed = Counter(PREFIX + "shed", "Requests refused at once: too many in flight",
                            registry=r)
        self.in_flight = Gauge(PREFIX + "in_flight", "Admitted requests in flight",
                               registry=r)
        self.stalled = Counter(PREFIX + "stalled_clients",
                               "Requests dropped because the client stopped reading "
                               "(a write waited longer than write_timeout)", registry=r)
        self.pipeline_timeouts = Counter(PREFIX + "pipeline_timeouts",
                                         "Prompts sent raw because the context pipeline ran "
                                         "past pipeline.timeout_ms", registry=r)
        self.tokenize_calls = Counter(PREFIX + "tokenize_calls",
                                      "Exact token counts asked of a backend, by outcome",
                                      ["backend", "outcome"], registry=r)
        self.breaker = Gauge(PREFIX + "breaker_state",
                             "Circuit breaker per backend: 0 closed, 1 half-open, 2 open",
                             ["backend"], registry=r)
        self.outstanding = Gauge(PREFIX + "backend_outstanding_requests",
                                 "Requests in flight to each backend (the balancer's load)",
                                 ["backend"], registry=r)
        self.chosen = Counter(PREFIX + "backend_chosen",
                              "Requests sent to each backend by the balancer (a failover "
                              "counts each backend tried)", ["backend"], registry=r)
        self.upstream_failures = Counter(PREFIX + "upstream_failures",
                                         "Backend failures by kind", ["backend", "code"],
                                         registry=r)
        self.ttft = Histogram(PREFIX + "time_to_first_token_seconds",
                              "Request arrival to first token relayed", ["route"], registry=r,
                              buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
        self.pipeline = Histogram(PREFIX + "pipeline_seconds", "Context pipeline time",
                                  registry=r, buckets=(.0005, .001, .002, .005, .01, .025,
                                                       .05, .1, .25))
        self.reduction = Histogram(PREFIX + "reduction_ratio",
                                   "Share of the prompt the pipeline removed", registry=r,
                                   buckets=(0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1))
        self.tokens = Counter(PREFIX + "tokens", "Tokens sent and received", ["kind"],
                              registry=r)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
