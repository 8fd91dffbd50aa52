"""The engine: model slots, decoding, sampling, drafting, grammars, chat and FIM on llama.cpp."""
