"""Which of the retrieved passages the model reads: the best ones, within a token budget."""

from __future__ import annotations

from bot.retrieval.records import Hit


def context_size(hits: list[Hit], most: int, budget: int) -> int:
    """How many of the best passages the model reads: at most `most`, within `budget` tokens
    (the first passage is always read)."""
    n, used = 0, 0
    for hit in hits[:most]:
        used += hit.meta.n_tokens
        if n and used > budget:
            break
        n += 1
    return n
