"""Scripted evaluation (`python -m eval`, see eval/README.md) and latency (`eval.latency`)."""
