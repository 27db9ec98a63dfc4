"""What retrieval keeps beside Chroma's vectors: filter columns, BM25 postings and each
language's vector statistics, folded from the stored segments (bot.index.segments).

Ingestion writes one small segment per batch of articles it adds or replaces, and per article
it removes (bot.index.state_writer); a process that already holds the state reads only the segments
written since (`load`), so an ingestion costs what its articles cost, at any index size, and
any number of UI processes on one Chroma server see it within a second. A state is never
changed in place: applying a segment makes a new one, so searches in flight keep theirs.
"""

from __future__ import annotations

import logging
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np

from bot.index import state_store
from bot.index.dense import DenseIndex
from bot.index.lexical import tokenize
from bot.index.postings_cache import PostingsCache
from bot.index.segments import LangStats, Moments, Postings, Segment
from bot.index.state_store import Manifest, Part
from bot.index.store import Index

log = logging.getLogger(__name__)

# segments published by this process: a searcher here rechecks at once after an ingestion here
saved_here = 0
K1, B = 1.5, 0.75  # BM25 (the Lucene variant of bm25s)


def _cat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`a` then `b`; `b` itself after nothing (a state's arrays are never changed in place, and
    a copy would double the peak memory of reading a large segment)."""
    return np.concatenate([a, b]) if len(a) else b


@dataclass
class SearchState:
    """Every passage ever applied, in rows; `live` says which still count."""

    upto: int = 0
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    lang: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    doc_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    date: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    live: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # each applied segment's postings and its first row (not the segment: its columns are
    # concatenated above and its moments summed below)
    postings: list[tuple[Postings, int]] = field(default_factory=list)
    moments: Moments = field(default_factory=Moments)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)  # article -> live rows
    # passage vectors by row, float32 [N, dim]: read from the passages collection (not stored
    # twice), so dense search is one matrix product in process
    vectors: np.ndarray | None = None
    # row of each passage id (its latest), built when first asked for (`rows`), then carried on
    positions: dict[str, int] | None = None

    def __post_init__(self) -> None:
        self.langs: dict[str, LangStats] = self.moments.stats()
        self.lang_rows = {x: np.flatnonzero((self.lang == x) & self.live) for x in self.langs}
        self.n_live = int(self.live.sum())
        self.live_length = float(self.lengths[self.live].sum()) if self.n_live else 0.0

    def rows(self, ids: list[str]) -> np.ndarray:
        """The rows of these passage ids; -1 for an id the state has not applied."""
        if self.positions is None:
            self.positions = {str(pid): row for row, pid in enumerate(self.ids)}
        found = self.positions
        return np.array([found.get(pid, -1) for pid in ids], dtype=np.int64)

    def live_ids(self) -> set[str]:
        return {str(i) for i in self.ids[self.live]}

    def applied(
        self,
        part: Part,
        segment: Segment,
        vectors: np.ndarray | None,
        postings: Postings | None = None,
    ) -> SearchState:
        """This state with `segment` applied: the articles it retires stop counting, its rows
        are added. `vectors` are the segment's rows' vectors (None: keep none); `postings` its
        postings when they were read apart (bot.index.postings_cache)."""
        live, spans, start = self.live.copy(), dict(self.spans), len(self.ids)
        for doc in segment.removes:
            span = spans.pop(str(doc), None)
            if span is not None:
                live[span[0] : span[1]] = False
        docs = _shared(segment.doc_id)  # one string per article, not per passage
        bounds = np.flatnonzero(docs[1:] != docs[:-1]) + 1 if len(docs) else np.zeros(0, int)
        for a, b in zip([0, *bounds.tolist()], [*bounds.tolist(), len(docs)], strict=True):
            if b > a:
                spans[str(docs[a])] = (start + a, start + b)
        held = None
        if vectors is not None and (self.vectors is not None or not start):
            held = vectors if self.vectors is None else _cat(self.vectors, vectors)
        kept = segment.postings() if postings is None else postings
        positions = None
        if self.positions is not None:
            positions = dict(self.positions)
            positions.update((str(pid), start + n) for n, pid in enumerate(segment.ids))
        return SearchState(
            max(self.upto, part.last),
            _cat(self.ids, segment.ids),
            _cat(self.lang, segment.lang),
            _cat(self.doc_id, docs),
            _cat(self.date, segment.date),
            _cat(self.lengths, segment.lengths),
            _cat(live, np.ones(len(segment), dtype=bool)),
            [*self.postings, (kept, start)],
            self.moments + segment.moments,
            spans,
            held,
            positions,
        )

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for `query` (k1=1.5, b=0.75, idf = ln(1 + (N - df + 0.5) /
        (df + 0.5)), over live rows only; zeros when no query word is indexed)."""
        words = sorted(set(tokenize(query)))
        out = np.zeros(len(self.ids), dtype=np.float32)
        if not words or not self.n_live:
            return out
        rows_l, tf_l, term_l = [], [], []
        for postings, start in self.postings:
            for k, span in postings.find(words):
                rows_l.append(postings.rows[span].astype(np.int64) + start)
                tf_l.append(postings.tf[span])
                term_l.append(np.full(span.stop - span.start, k))
        if not rows_l:
            return out
        rows = np.concatenate(rows_l)
        keep = self.live[rows]
        rows, terms = rows[keep], np.concatenate(term_l)[keep]
        tf = np.concatenate(tf_l)[keep].astype(np.float64)
        df = np.bincount(terms, minlength=len(words)).astype(np.float64)
        idf = np.log1p((self.n_live - df + 0.5) / (df + 0.5))
        norm = K1 * (1 - B + B * self.lengths[rows] / max(self.live_length / self.n_live, 1e-9))
        weights = tf * (K1 + 1) / (tf + norm) * idf[terms]
        return np.bincount(rows, weights=weights, minlength=len(self.ids)).astype(np.float32)


def _shared(values: np.ndarray) -> np.ndarray:
    """`values` (strings) with equal strings made one object."""
    if not len(values):
        return values
    unique, inverse = np.unique(values.astype(str), return_inverse=True)
    return unique.astype(object)[inverse]


def plan(manifest: Manifest, upto: int) -> list[Part] | None:
    """The stored segments that bring a state holding writes up to `upto` to the manifest's,
    in order; None when none do (a segment covering writes it has and some it lacks was
    combined, and its sources are gone): then the state is read again whole."""
    if upto >= manifest.upto:
        return []
    chosen, at = [], upto + 1
    candidates = manifest.parts + [p for p, _ in manifest.retired]
    while at <= manifest.upto:
        fitting = [p for p in candidates if p.first == at]
        if not fitting:
            return None
        best = max(fitting, key=lambda p: p.last)
        chosen.append(best)
        at = best.last + 1
    return chosen


def load(
    index: Index,
    held: SearchState | None = None,
    vectors: bool = True,
    manifest: Manifest | None = None,
    cache: PostingsCache | None = None,
) -> SearchState | None:
    """The state in force (`manifest`, when the caller has just read it), built on `held` when
    only segments it lacks must be read; None when there is no state yet (or only one of an
    older format). With `cache`, large segments' postings are mapped from this machine's disk."""
    for _ in range(3):  # a writer may combine segments while we read: start again
        manifest = manifest or state_store.read_manifest(index)
        if manifest is None:
            return None
        steps = plan(manifest, held.upto) if held is not None else None
        state = held if steps is not None and held is not None else SearchState()
        parts = manifest.parts if steps is None else steps
        # the cache's folder is named by the state collection's id: asked only when a whole
        # read prunes it or a large part is read, not at every small update
        needed = cache is not None and (
            steps is None or any(p.rows >= cache.min_rows for p in parts)
        )
        namespace = str(state_store.collection(index).id) if needed else ""
        for part in parts:
            read = _segment(index, part, cache, namespace)
            if read is None:
                break
            segment, postings = read
            state = state.applied(
                part, segment, _vectors(index, segment) if vectors else None, postings
            )
        else:
            if cache is not None and steps is None:
                cache.prune(namespace, manifest.keys())
            return state
        manifest = None  # read it again
    log.warning("the search state kept changing while it was read; using what was read")
    return held


def _segment(
    index: Index, part: Part, cache: PostingsCache | None, namespace: str
) -> tuple[Segment, Postings | None] | None:
    """A stored segment, and its postings mapped from `cache` when it is large; None when it
    is gone."""
    if cache is None or part.rows < cache.min_rows:
        segment = state_store.load_segment(index, part.key)
        return None if segment is None else (segment, None)
    with tempfile.TemporaryFile() as stored:  # on disk: hundreds of MB at a million passages
        if not state_store.fetch_segment(index, part.key, stored):
            return None
        postings = cache.get(namespace, part.key)
        if postings is None:
            stored.seek(0)
            with zipfile.ZipFile(stored) as members:
                postings = cache.put(namespace, part.key, members)
        stored.seek(0)
        return Segment.loads(stored, postings=postings is None), postings


def _vectors(index: Index, segment: Segment, batch: int = 1000) -> np.ndarray:
    """The vectors of a segment's rows from the passages collection (zeros for passages
    deleted since: a later segment retires them)."""
    ids = [str(i) for i in segment.ids]
    rows: dict[str, np.ndarray] = {}
    for start in range(0, len(ids), batch):
        got = index.passages.get(ids=ids[start : start + batch], include=["embeddings"])
        for pid, vec in zip(got["ids"], got["embeddings"], strict=True):  # type: ignore[arg-type]
            rows[pid] = np.asarray(vec, dtype=np.float32)
    out = np.zeros((len(ids), index.dim), dtype=np.float32)
    for n, pid in enumerate(ids):
        if pid in rows:
            out[n] = rows[pid]
    return out


def problems(index: Index) -> list[str]:
    """Where the stored state and the index disagree; empty when they agree."""
    state = load(index, vectors=False)
    if state is None:
        return ["no search state (BM25, filters): the next ingestion or search builds it"]
    found = []
    pending = state_store.intents(index)
    if pending:
        found.append(f"search state: {len(pending)} writes not finished; the next run does")
    named = (state_store.read_manifest(index) or Manifest()).keys()
    orphans = [k for k in state_store.segment_keys(index) if k not in named]
    if orphans:
        found.append(
            f"search state: {len(orphans)} stored segments no state names (a write "
            "stopped half-way); the next ingestion deletes them"
        )
    stored = set(index.passages.get(include=[])["ids"])
    have = state.live_ids()
    if stored - have:
        found.append(f"search state: {len(stored - have)} passages missing")
    if have - stored:
        found.append(f"search state: {len(have - stored)} passages no longer indexed")
    vectors = DenseIndex(index).ids()
    if have - vectors:
        found.append(f"dense index: {len(have - vectors)} passages missing")
    if vectors - have:
        found.append(f"dense index: {len(vectors - have)} passages no longer indexed")
    return found
