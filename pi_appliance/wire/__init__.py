"""The orchestrator's own fields on top of the wire formats (`cerebrum.openai`,
`cerebrum.llamacpp`): what it acts on, and what goes upstream as the client sent it."""
