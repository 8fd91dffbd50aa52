"""Reaching the backends: routing, load spread, circuit breakers, failover, the HTTP client."""
