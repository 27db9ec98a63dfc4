"""Keeps the stored search state in step with the index's writes, one batch of articles at a
time (bot.index.store's write_articles; one article for a removal).

Around each batch's write the writer
1. records an intent per article (one write): its id and the vectors of the passages it
   replaces, read while they are still indexed;
2. after the commit, stores one segment of the articles' new passages (nothing for a removal)
   that retires their earlier ones and takes their vectors out of the language statistics;
3. names that segment in the manifest, then drops the intents.
A run killed between 1 and 3 leaves the intent: the next writer builds the segment from what
the index then holds (the old version after a rollback, the new one after a commit). A
manifest that already names the intent (killed between 3 and its drop) is not applied twice.

Segments are combined as they accumulate, never blocking a search: the newest ones when two
are about as large (so there are about log N of them), all of them into one when the newer
ones hold half as many rows as the oldest. Combining reads no passage text and re-tokenizes
nothing. A process holding the state before a combination keeps it (it is equal); the
segments combined away stay stored RETAIN_S for processes that had applied only some of them.
"""

from __future__ import annotations

import logging
import time
import uuid
from types import TracebackType
from typing import Any

import numpy as np

from bot.errors import BotError
from bot.index import search_state, state_store
from bot.index.dense import DenseIndex
from bot.index.lexical import tokenize
from bot.index.segments import Moments, Segment, combine, moments_of
from bot.index.state_store import Intent, Manifest, Part
from bot.index.store import Index
from bot.index.writer_lock import WriterLock

log = logging.getLogger(__name__)
RETAIN_S = 600.0
RETAIN_MAX = 64  # at most this many combined-away segments are kept, the newest


def _rows(index: Index, doc_ids: list[str], include: list[str]) -> dict[str, list[Any]]:
    """The articles' indexed passages in reading order (by article, then chunk): ids,
    metadatas and `include` (no call for no articles)."""
    fields = sorted({"metadatas", *include})
    if not doc_ids:
        return {name: [] for name in ["ids", *fields]}
    where: Any = {"doc_id": doc_ids[0]} if len(doc_ids) == 1 else {"doc_id": {"$in": doc_ids}}
    got = index.passages.get(where=where, include=fields)  # type: ignore[arg-type]
    metas = got["metadatas"] or []
    order = sorted(range(len(got["ids"])), key=lambda n: (_doc(metas[n]), _chunk(metas[n])))
    columns: dict[str, Any] = {"ids": got["ids"], **{f: got[f] for f in fields}}  # type: ignore[literal-required]
    return {name: [values[n] for n in order] for name, values in columns.items()}


def _doc(meta: Any) -> str:
    return str((meta or {}).get("doc_id") or "")


def _chunk(meta: Any) -> int:
    return int((meta or {}).get("chunk_index") or 0)


class StateWriter:
    """`with StateWriter(index) as writer:` holds the writer's lock, finishes what a killed run
    left and builds the state when there is none; `begin` and `publish` bracket each write."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.lock = WriterLock(index)
        self.manifest = Manifest()
        self._pending: dict[str, Intent] = {}
        self._held: dict[str, Segment] = {}  # segments written here, not read back
        self.dense = DenseIndex(index)

    def __enter__(self) -> StateWriter:
        self.lock.acquire()
        try:
            found = state_store.read_manifest(self.index)
            if found is None:
                self.rebuild()
            else:
                self.manifest = found
                state_store.migrate(self.index)
                self.finish_intents()
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None and issubclass(kind, BotError):
            # the store itself failed, as in settle: leave the lease; it dies with this process
            # (bot.index.writer_lock.WriterLock)
            return
        try:
            if kind is None:
                self.compact()
        finally:
            self.lock.release()

    # -- articles ---------------------------------------------------------------------------
    def begin(self, doc_ids: list[str], indexed: list[str] | None = None) -> list[str]:
        """Record that the articles are about to change (one write); the nonces `publish`
        completes. `indexed`: those of them the index may hold passages of (default all);
        the vectors they replace are read, the others have none."""
        if not doc_ids:
            return []
        got = _rows(self.index, doc_ids if indexed is None else indexed, ["embeddings"])
        doc = np.array([str((m or {}).get("doc_id")) for m in got["metadatas"]], dtype=str)
        langs = np.array([str((m or {}).get("lang") or "") for m in got["metadatas"]], dtype=str)
        vectors = self._matrix(got["embeddings"], len(langs))
        made = [
            Intent(uuid.uuid4().hex[:12], d, langs[doc == d], vectors[doc == d]) for d in doc_ids
        ]
        self.lock.renew()
        state_store.put_intents(self.index, made)
        self._pending.update((intent.nonce, intent) for intent in made)
        return [intent.nonce for intent in made]

    def publish(
        self,
        nonces: list[str],
        ids: list[str],
        texts: list[str],
        metas: list[dict[str, Any]],
        vectors: np.ndarray,
    ) -> None:
        """The articles' writes are committed: their passages now (none when removed), as
        one segment."""
        if not nonces:
            return
        done = [self._pending.pop(nonce) for nonce in nonces]
        langs = np.array([str(m.get("lang") or "") for m in metas], dtype=str)
        old_langs = [i.langs for i in done]
        old = sum(len(x) for x in old_langs)
        basis = (
            np.concatenate([langs, *old_langs]).astype(str),
            np.concatenate([self._matrix(vectors, len(ids)), *(i.vectors for i in done)]),
            np.concatenate([np.ones(len(ids)), -np.ones(old)]).astype(np.int8),
        )
        segment = Segment.build(
            ids,
            [tokenize(t) for t in texts],
            metas,
            moments_of(*basis),
            [i.doc_id for i in done],
            nonces,
            basis,
        )
        # Chroma's per-language vectors first (again, after a kill: both steps are idempotent)
        self.dense.write(ids, langs, basis[1][: len(ids)], metas)
        versions = {str(m.get("doc_id")): str(m.get("version") or "") for m in metas}
        self.dense.drop(
            {i.doc_id: versions.get(i.doc_id, "") for i in done if len(i.langs)},
            {str(x) for x in np.concatenate(old_langs)},
        )
        self._append(segment)
        state_store.drop_intents(self.index, nonces)

    def finish_intents(self) -> list[str]:
        """Complete the writes a killed run left (after bot.index.store's repair); their ids."""
        left = state_store.intents(self.index)
        done = [i.nonce for i in left if i.nonce in self.manifest.nonces]
        state_store.drop_intents(self.index, done)
        finished = []
        for intent in (i for i in left if i.nonce not in done):
            self._pending[intent.nonce] = intent
            finished.append(intent.nonce)
        self._publish_indexed(finished)
        return [i.doc_id for i in left if i.nonce in finished]

    def settle(self, nonces: list[str], error: BaseException) -> None:
        """Writes that failed with `error`: for the articles the index rolled back, the state
        takes what it holds now; otherwise, or when the store itself failed (a full disk: its
        next call may hang), the intents stay for the run that repairs the index."""
        if isinstance(error, BotError):
            return
        records = self.index.records([self._pending[n].doc_id for n in nonces])
        rolled_back = [
            n for n in nonces if not records.get(self._pending[n].doc_id, {}).get("pending")
        ]
        self._publish_indexed(rolled_back)

    def _publish_indexed(self, nonces: list[str]) -> None:
        if not nonces:
            return
        got = _rows(
            self.index, [self._pending[n].doc_id for n in nonces], ["documents", "embeddings"]
        )
        metas = [dict(m or {}) for m in got["metadatas"]]
        self.publish(
            nonces,
            got["ids"],
            [str(d or "") for d in got["documents"]],
            metas,
            self._matrix(got["embeddings"], len(metas)),
        )

    def _matrix(self, vectors: Any, rows: int) -> np.ndarray:
        return np.asarray(vectors, dtype=np.float32).reshape(rows, self.index.dim)

    # -- the whole state --------------------------------------------------------------------
    def rebuild(self, batch: int = 5000) -> None:
        """The state from every indexed passage (an index from before this state, or of an
        older format): minutes at 100k passages, once."""
        gen = self.manifest.upto + 1
        ids, tokens, metas, moments = [], [], [], Moments()
        total = self.index.count()
        self.dense.reset()
        for start in range(0, max(total, 1), batch):
            got = self.index.passages.get(
                include=["documents", "metadatas", "embeddings"], limit=batch, offset=start
            )
            got_metas = [{k: str(v) for k, v in (m or {}).items()} for m in got["metadatas"] or []]
            ids += got["ids"]
            tokens += [tokenize(str(d or "")) for d in got["documents"] or []]
            metas += got_metas
            batch_langs = np.array([m.get("lang", "") for m in got_metas], dtype=str)
            if len(got["ids"]):
                vectors = self._matrix(got["embeddings"], len(got["ids"]))
                moments = moments + Moments.of(batch_langs, vectors)
                self.dense.write(got["ids"], batch_langs, vectors, got_metas)
            self.lock.renew()
        order = sorted(
            range(len(ids)), key=lambda n: (metas[n].get("doc_id", ""), _chunk(metas[n]))
        )
        segment = Segment.build(
            [ids[n] for n in order],
            [tokens[n] for n in order],
            [metas[n] for n in order],
            moments,
            [],
        )
        state_store.clear(self.index)
        key = state_store.new_key(gen)
        state_store.save_segment(self.index, key, segment)
        self.manifest = Manifest([Part(key, 0, gen, len(segment))])
        self._held = {key: segment}
        self._write()

    def compact(self) -> None:
        """Combine segments as they accumulate (see the module's docstring)."""
        parts = self.manifest.parts
        if len(parts) >= 2 and sum(p.rows for p in parts[1:]) * 2 >= max(parts[0].rows, 1):
            self._combine(len(parts))
        while len(self.manifest.parts) >= 3:
            a, b = self.manifest.parts[-2:]
            if a.rows > b.rows and len(self.manifest.parts) <= 32:
                break
            self._combine(2)
        self._forget_retired()

    def _combine(self, count: int) -> None:
        parts = self.manifest.parts
        group = parts[-count:]
        segments = [self._segment(p) for p in group]
        first = len(group) == len(parts)
        merged = combine(segments, first=first)
        span = (0 if first else group[0].first, group[-1].last)
        key = state_store.new_key(span[1])
        state_store.save_segment(self.index, key, merged)
        self._held[key] = merged
        for part in group:
            self._held.pop(part.key, None)
        now = time.time()
        self.manifest = Manifest(
            [*parts[:-count], Part(key, span[0], span[1], len(merged))],
            self.manifest.nonces,
            [*self.manifest.retired, *((p, now) for p in group)],
        )
        self._write()

    def _forget_retired(self) -> None:
        now = time.time()
        retired = self.manifest.retired
        old = [
            p
            for n, (p, at) in enumerate(retired)
            if now - at > RETAIN_S or n < len(retired) - RETAIN_MAX
        ]
        if old:
            self.manifest.retired = [(p, at) for p, at in self.manifest.retired if p not in old]
            self._write()
            state_store.delete_segments(self.index, [p.key for p in old])
        # a writer killed after storing a segment, before the manifest named it, left it
        named = self.manifest.keys()
        state_store.delete_segments(
            self.index, [k for k in state_store.segment_keys(self.index) if k not in named]
        )

    def _segment(self, part: Part) -> Segment:
        segment = self._held.get(part.key) or state_store.load_segment(self.index, part.key)
        if segment is None:
            raise RuntimeError(f"search state segment {part.key} is missing")
        return segment

    def _append(self, segment: Segment) -> None:
        gen = self.manifest.upto + 1
        key = state_store.new_key(gen)
        state_store.save_segment(self.index, key, segment)
        self._held[key] = segment
        self.manifest = Manifest(
            [*self.manifest.parts, Part(key, gen, gen, len(segment))],
            segment.nonces,
            self.manifest.retired,
        )
        self._write()

    def _write(self) -> None:
        state_store.write_manifest(self.index, self.manifest)
        search_state.saved_here += 1
        self.lock.renew()
