"""What `make install` runs besides pip: the embedded LLM's llama.cpp build (llama_wheel)."""
