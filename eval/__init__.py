"""Measure answers: latency now (eval.latency); quality metrics arrive with issue #5."""
