"""Pieces shared by Cerebrum's services and client: config validation, socket activation,
idle exit, API keys and logging. Standard library, aiohttp-free and llama-free."""
