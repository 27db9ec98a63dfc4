"""Articles are embedded and written in batches: one embedder call and one Chroma call per step
for up to BATCH_PASSAGES passages (bot.index.store's write_articles), the search state following
with one segment. A run killed mid-batch rolls that batch back; batches written before stay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.errors import BotError
from bot.index import errors as store_errors
from bot.index.state_writer import StateWriter
from bot.index.store import ArticleWrite, Index
from bot.models.embeddings import Embedder
from bot.settings import Settings

if TYPE_CHECKING:
    from ingest.pipeline import FileResult, Prepared

log = logging.getLogger(__name__)

BATCH_PASSAGES = 256  # a batch is written once it holds this many passages ...
BATCH_ARTICLES = 16  # ... or this many articles


@dataclass
class Queued:
    prepared: Prepared
    version: str
    previous: dict[str, Any] | None
    result: FileResult  # filled in when the batch is written
    vectors: np.ndarray | None = None


@dataclass
class Batch:
    """The articles waiting to be embedded and written into `index`, the search state
    following through `writer`."""

    settings: Settings
    index: Index
    writer: StateWriter
    embedder: Embedder
    items: list[Queued] = field(default_factory=list)

    @property
    def passages(self) -> int:
        return sum(len(q.prepared.passages) for q in self.items)

    @property
    def full(self) -> bool:
        return self.passages >= BATCH_PASSAGES or len(self.items) >= BATCH_ARTICLES

    def add(self, queued: Queued) -> None:
        """Queue an article; the batch is written first when the article would not fit on the
        disk with it, and after when full."""
        waiting = [q.prepared for q in self.items]
        try:
            check_space(self.settings, [*waiting, queued.prepared], self.embedder.dim)
        except BotError:
            if not waiting:
                raise
            self.write()  # what fits is kept; then this one alone
            check_space(self.settings, [queued.prepared], self.embedder.dim)
        self.items.append(queued)
        if self.full:
            self.write()

    def write(self) -> None:
        """Embed and write the queued articles, then empty the batch. An article whose
        embedding fails fails alone; a failed write fails the batch's articles (rolled back)."""
        items, self.items = self.items, []
        items = _embed(self.embedder, items)
        if not items:
            return
        writes = [_article(q) for q in items]
        writer = self.writer
        nonces = writer.begin([w.doc_id for w in writes], [w.doc_id for w in writes if w.previous])
        try:
            self.index.write_articles(writes)
        except BaseException as exc:
            writer.settle(nonces, exc)
            if isinstance(exc, BotError) or not isinstance(exc, Exception):
                raise
            log.exception("writing %s failed", [w.doc_id for w in writes])
            for q in items:
                _fail(q, f"{type(exc).__name__}: {exc}")
            return
        writer.publish(
            nonces,
            [i for w in writes for i in w.ids],
            [t for w in writes for t in w.texts],
            [m for w in writes for m in w.metas],
            np.concatenate([w.vectors for w in writes]),
        )


def _embed(embedder: Embedder, items: list[Queued]) -> list[Queued]:
    """The batch's passages in one embedder call; when that fails, article by article, so that
    one bad article fails alone. The articles that have their vectors."""
    texts = [p.text for q in items for p in q.prepared.passages]
    try:
        vectors = embedder.embed_passages(texts)
    except BotError:
        raise
    except Exception:
        for q in items:
            try:
                q.vectors = embedder.embed_passages([p.text for p in q.prepared.passages])
            except BotError:
                raise
            except Exception as exc:
                log.exception("embedding %s failed", q.prepared.meta.doc_id)
                _fail(q, f"{type(exc).__name__}: {exc}")
        return [q for q in items if q.vectors is not None]
    start = 0
    for q in items:
        q.vectors = vectors[start : start + len(q.prepared.passages)]
        start += len(q.prepared.passages)
    return items


def _fail(q: Queued, reason: str) -> None:
    q.result.status, q.result.reason, q.result.passages = "failed", reason, 0


def _article(q: Queued) -> ArticleWrite:
    meta, passages = q.prepared.meta, q.prepared.passages
    base = {**meta.as_chroma(), "version": q.version}
    metas = [
        {
            **base,
            "chunk_index": i,
            "n_chunks": len(passages),
            "start_char": p.start,
            "end_char": p.end,
            "n_tokens": p.n_tokens,
        }
        for i, p in enumerate(passages)
    ]
    record = {
        **base,
        "n_passages": len(passages),
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    ids = [f"{meta.doc_id}:{q.version}:{i:04d}" for i in range(len(passages))]
    vectors = q.vectors if q.vectors is not None else np.zeros((0, 0), np.float32)
    return ArticleWrite(
        meta.doc_id, q.version, q.previous, ids, vectors, [p.text for p in passages], metas, record
    )


def check_space(settings: Settings, queued: list[Prepared], dim: int) -> None:
    """Stop before writing articles that would leave the index's disk below INDEX_MIN_FREE_MB,
    or (none) before writing anything on a disk already below it (embedded index only; a
    Chroma server minds its own disk). 0 turns the check off."""
    if settings.chroma_host or not settings.index_min_free_mb:
        return
    texts = sum(len(p.text.encode()) for prepared in queued for p in prepared.passages)
    count = sum(len(prepared.passages) for prepared in queued)
    # vector, text and metadata, then written again by Chroma's log, its segments and the
    # search state: four times over is what the shipped corpus took.
    need_mb = 4 * (texts + count * (dim * 4 + 1024)) / 2**20
    free = store_errors.free_mb(settings.index_dir)
    if free - need_mb < settings.index_min_free_mb:
        what = f"up to {queued[-1].meta.doc_id} needs about {need_mb:.1f} MB and " if queued else ""
        raise BotError(
            f"The disk of the index in {settings.index_dir} is nearly full ({free:.1f} MB free; "
            f"{what}INDEX_MIN_FREE_MB={settings.index_min_free_mb:g} stays free). Free some "
            "space and run again: articles written before this one are kept."
        )
