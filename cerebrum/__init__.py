"""Pieces shared by Cerebrum's services and client: the internal request (`generation/`) and
the wire formats translating to it (`openai/`, `llamacpp/`, …), config validation, socket
activation, idle exit, API keys and logging. Standard library, aiohttp-free and llama-free."""
