"""Where a request enters the backend: app factory, error map, routes, model endpoints, server."""
