"""BM25 over the articles' stored translations (bot.answering.pivot makes them), so that an
English question meets a French article's words: each passage's translated sentences are one
document, scored as bot.index.search_state scores the passages themselves, and a passage's
lexical score is the better of its own and its translation's.

The translations are few beside the passages (one per passage not in the pivot language) and
are made in the background, long after ingestion wrote the search state: they are held in
memory, read again whole when their number changes (checked at most once a second).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from bot.index.lexical import tokenize
from bot.index.search_state import K1, B
from bot.index.store import Index


@dataclass
class _Documents:
    ids: list[str] = field(default_factory=list)  # the original passages' ids
    postings: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # word: (doc, tf)
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0))
    count: int = -1  # stored sentences when read


class TranslatedWords:
    """The translations' BM25 of one index, for one pivot language."""

    RECHECK_S = 1.0

    def __init__(self, index: Index, lang: str) -> None:
        self.index, self.lang = index, lang
        self._docs = _Documents()
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def documents(self) -> _Documents:
        now = time.monotonic()
        if now - self._checked < self.RECHECK_S:
            return self._docs
        with self._lock:
            self._checked = now
            count = int(self.index.translations.count())
            if count != self._docs.count:
                self._docs = self._read(count)
            return self._docs

    def _read(self, count: int) -> _Documents:
        sentences: dict[str, list[tuple[int, str]]] = {}
        for text, meta in self.index.translated({"lang": self.lang}):
            if meta.get("faithful"):  # a sentence left untranslated is in the passage already
                sentences.setdefault(str(meta["passage_id"]), []).append((int(meta["start"]), text))
        docs = _Documents(count=count)
        lengths = []
        for doc, (pid, parts) in enumerate(sorted(sentences.items())):
            words = tokenize(" ".join(text for _, text in sorted(parts)))
            docs.ids.append(pid)
            lengths.append(len(words))
            for word, tf in Counter(words).items():
                docs.postings.setdefault(word, []).append((doc, tf))
        docs.lengths = np.asarray(lengths, dtype=np.float64)
        return docs

    def scores(self, query: str) -> dict[str, float]:
        """BM25 score of each translated passage (by its original's id) for `query`; only
        those that hold a word of it."""
        docs = self.documents()
        n = len(docs.ids)
        if not n:
            return {}
        mean = max(float(docs.lengths.mean()), 1e-9)
        out = np.zeros(n)
        for word in set(tokenize(query)):
            found = docs.postings.get(word)
            if not found:
                continue
            idf = np.log1p((n - len(found) + 0.5) / (len(found) + 0.5))
            rows = np.array([d for d, _ in found])
            tf = np.array([t for _, t in found], dtype=np.float64)
            norm = K1 * (1 - B + B * docs.lengths[rows] / mean)
            out[rows] += tf * (K1 + 1) / (tf + norm) * idf
        return {docs.ids[i]: float(out[i]) for i in np.flatnonzero(out)}
