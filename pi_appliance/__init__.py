"""Cerebrum orchestrator (Raspberry Pi CM4): context pipeline, routing and failover to backends."""
