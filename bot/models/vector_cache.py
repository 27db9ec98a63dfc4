"""Passage-side vectors of sentences, computed once (citation checks and highlights embed the
same article sentences again and again)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np


class VectorCache:
    """Passage-side vectors of sentences, computed once: highlighting embeds the same cited
    sentences again and again. Safe to share between the UI's worker threads: the model runs
    outside the lock, and a caller never reads back what another one may have evicted."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], limit: int = 20_000) -> None:
        self.embed, self.limit = embed, limit
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def __call__(self, sentences: list[str]) -> np.ndarray:
        with self._lock:
            known = {s: self._vectors[s] for s in sentences if s in self._vectors}
        missing = [s for s in dict.fromkeys(sentences) if s not in known]
        if missing:
            fresh = dict(zip(missing, self.embed(missing), strict=True))
            known.update(fresh)
            with self._lock:
                if len(self._vectors) + len(fresh) > self.limit:
                    self._vectors.clear()
                self._vectors.update(fresh)
        return np.stack([known[s] for s in sentences])
