"""Where a request enters the orchestrator: app factory, lifecycle, error map, resources."""
