"""Translations of one story (articles sharing a story id) hold the same passages: retrieval
shows the best of them once, the others as its `alternatives`."""

from __future__ import annotations

from bot.retrieval.records import Hit


def fold_translations(hits: list[Hit]) -> list[Hit]:
    """Keep the best of passages that translate each other (same story, another article, the
    same part of it); the others become its `alternatives`."""
    kept: list[Hit] = []
    for hit in hits:
        twin = next((k for k in kept if _same_passage(k, hit)), None)
        if twin is None:
            kept.append(hit)
        else:
            twin.alternatives.append(hit)
    return kept


def _span(hit: Hit) -> tuple[float, float]:
    """Where the passage sits in its article, as fractions of the article's passages."""
    n = max(1, hit.meta.n_chunks)
    i = hit.meta.chunk_index
    return i / n, (i + 1) / n


def _same_passage(a: Hit, b: Hit) -> bool:
    if a.doc_id == b.doc_id or a.meta.story_id != b.meta.story_id:
        return False
    (a0, a1), (b0, b1) = _span(a), _span(b)
    overlap = min(a1, b1) - max(a0, b0)
    return overlap >= 0.5 * min(a1 - a0, b1 - b0)
