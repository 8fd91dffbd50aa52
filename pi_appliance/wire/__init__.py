"""The wire formats the orchestrator reads: OpenAI completions, llama.cpp's infill bodies."""
