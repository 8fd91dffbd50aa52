"""The engine: runs internal requests on llama.cpp (run.py), with model slots, decoding,
sampling, drafting, grammars, chat templates and FIM; its pieces become internal events."""
