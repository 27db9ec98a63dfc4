"""Where the search state lives: collections of the index's own Chroma (embedded or server),
so every process served by one Chroma sees one state.

`<name>-search` holds the small records written at every ingestion, told apart by `kind`:
- `pointer`: the manifest in force, which segments make the state and how far it got;
- `intent`: a write under way, with the vectors of the passages it replaces, so that a run
  killed half-way is finished by the next one (bot.index.state_writer);
- `lock`: which process writes the state now, until when.

Each segment has a collection of its own, `<name>-seg-<key>`: its bytes in `part` records
(base64, in metadata: Chroma would full-text index a document), written in full before the
manifest names it. Chroma 1.5 keeps a collection's writes in its log until its vector index
syncs, and every write reads that log again: with segments' megabytes in the log of the
collection of the small records, each small write took 0.5 s at 630k passages (measured). So
segments have collections of their own, and all these collections sync every 2 writes
(`LOG_SYNC`).
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import numpy as np

from bot.errors import BotError
from bot.index.errors import is_missing
from bot.index.segments import FORMAT, Segment
from bot.index.store import _UNIT, Index

_PART_CHARS = 4_000_000  # base64 characters per Chroma record
_PARTS_PER_WRITE = 8  # records per write of a large segment
# Chroma keeps a collection's writes in its log until its vector index syncs (every 1,000
# writes by default) and every write reads that log again: with segments' megabytes in it, a
# small write took 0.4 s (measured, 30 x 4 MB); syncing every 2 writes keeps it at 10 ms
LOG_SYNC: Any = {"hnsw": {"sync_threshold": 2, "batch_size": 2}}
_POINTER, LOCK_ID = "current", "lock"


@dataclass(frozen=True)
class Part:
    """A stored segment covering the writes numbered first..last (a combined segment covers
    the range of those it replaced; a state rebuilt from scratch starts at 0)."""

    key: str
    first: int
    last: int
    rows: int


@dataclass
class Manifest:
    parts: list[Part] = field(default_factory=list)
    nonces: list[str] = field(default_factory=list)  # the intents the last segment completed
    # segments combined away, kept a while for processes that had applied some of them
    retired: list[tuple[Part, float]] = field(default_factory=list)

    @property
    def upto(self) -> int:
        return max((p.last for p in self.parts), default=0)

    def keys(self) -> set[str]:
        """The segments it names: in force, and combined away but still kept."""
        return {p.key for p in self.parts} | {p.key for p, _ in self.retired}

    def dumps(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "parts": [asdict(p) for p in self.parts],
                "nonces": self.nonces,
                "retired": [[asdict(p), at] for p, at in self.retired],
            }
        )

    @classmethod
    def loads(cls, text: str) -> Manifest | None:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            return None
        return cls(
            [Part(**p) for p in data["parts"]],
            list(data["nonces"]),
            [(Part(**p), float(at)) for p, at in data.get("retired", [])],
        )


def collection(index: Index) -> Any:
    return index.client.get_or_create_collection(
        f"{index.name}-search", embedding_function=None, configuration=LOG_SYNC
    )


def read_manifest(index: Index) -> Manifest | None:
    """The manifest in force; None when there is none or it is of another format."""
    got = collection(index).get(ids=[_POINTER], include=["metadatas"])
    metas = got["metadatas"] or []
    if not metas or not metas[0] or "manifest" not in metas[0]:
        return None
    return Manifest.loads(str(metas[0]["manifest"]))


def write_manifest(index: Index, manifest: Manifest) -> None:
    meta = {"kind": "pointer", "manifest": manifest.dumps()}
    collection(index).upsert(ids=[_POINTER], embeddings=_UNIT, metadatas=[meta])


def new_key(gen: int) -> str:
    return f"{gen:010d}-{uuid.uuid4().hex[:8]}"


def _segment_name(index: Index, key: str) -> str:
    return f"{index.name}-seg-{key}"


def _segment_collection(index: Index, key: str) -> Any:
    return index.client.get_or_create_collection(
        _segment_name(index, key), embedding_function=None, configuration=LOG_SYNC
    )


def save_segment(index: Index, key: str, segment: Segment) -> None:
    """Store a segment in a collection of its own (see the module's docstring), a few
    records per write."""
    col = _segment_collection(index, key)
    text = base64.b64encode(segment.dumps()).decode()
    chunks = [text[i : i + _PART_CHARS] for i in range(0, len(text), _PART_CHARS)] or [""]
    for first in range(0, len(chunks), _PARTS_PER_WRITE):
        ns = range(first, min(first + _PARTS_PER_WRITE, len(chunks)))
        metas = [
            {"kind": "part", "key": key, "part": n, "parts": len(chunks), "blob": chunks[n]}
            for n in ns
        ]
        col.upsert(
            ids=[f"{key}:{n:04d}" for n in ns],
            embeddings=np.repeat(_UNIT, len(ns), 0),
            metadatas=metas,
        )


def load_segment(index: Index, key: str) -> Segment | None:
    """A stored segment; None when it is gone (combined away and deleted) or incomplete."""
    buf = io.BytesIO()
    if not fetch_segment(index, key, buf):
        return None
    buf.seek(0)
    return Segment.loads(buf)


def fetch_segment(index: Index, key: str, into: IO[bytes]) -> bool:
    """Write a stored segment's bytes (`Segment.dumps`) to `into`, a record at a time (a
    segment of a million passages is hundreds of MB: its records' text at once would double
    the reader's peak memory); False when it is gone (combined away and deleted) or incomplete."""
    try:
        col: Any = index.client.get_collection(_segment_name(index, key), embedding_function=None)
    except BotError as exc:
        if not is_missing(exc):
            raise
        col = None
    if col is not None and _copy(col, key, into):
        return True
    # a state from before a collection per segment keeps its segments in `<name>-search`
    # until a writer moves them (`migrate`); one killed while moving left them there too
    into.seek(0)
    into.truncate()
    return _copy(collection(index), key, into)


def _copy(col: Any, key: str, into: IO[bytes]) -> bool:
    n, parts = 0, 1
    while n < parts:
        got = col.get(ids=[f"{key}:{n:04d}"], include=["metadatas"])
        metas = got["metadatas"] or []
        if not metas or not metas[0]:
            return False
        parts = int(metas[0]["parts"])
        into.write(base64.b64decode(str(metas[0]["blob"])))
        n += 1
    return True


def migrate(index: Index) -> None:
    """Move the segments a state from before a collection per segment stored in
    `<name>-search` into collections of their own (copied, then deleted: a kill in between
    leaves both copies, and the next writer finishes)."""
    col = collection(index)
    ids = [str(i) for i in col.get(where={"kind": "part"}, include=[])["ids"]]
    for key in sorted({i.rsplit(":", 1)[0] for i in ids}):
        mine = sorted(i for i in ids if i.rsplit(":", 1)[0] == key)
        target = _segment_collection(index, key)
        for first in range(0, len(mine), _PARTS_PER_WRITE):
            got = col.get(ids=mine[first : first + _PARTS_PER_WRITE], include=["metadatas"])
            target.upsert(
                ids=got["ids"],
                embeddings=np.repeat(_UNIT, len(got["ids"]), 0),
                metadatas=got["metadatas"],
            )
        col.delete(ids=mine)


def delete_segments(index: Index, keys: list[str]) -> None:
    for key in keys:
        try:
            index.client.delete_collection(_segment_name(index, key))
        except BotError as exc:
            if not is_missing(exc):
                raise


def segment_keys(index: Index) -> list[str]:
    """The keys of every stored segment, in use or not."""
    prefix = _segment_name(index, "")
    names = [getattr(c, "name", c) for c in index.client.list_collections()]
    return sorted(str(n)[len(prefix) :] for n in names if str(n).startswith(prefix))


def stored_bytes(index: Index) -> int:
    """The size of the stored segments (base64 as stored)."""
    total = 0
    for key in segment_keys(index):
        col = index.client.get_collection(_segment_name(index, key), embedding_function=None)
        got = col.get(include=["metadatas"])
        total += sum(len(str((m or {}).get("blob") or "")) for m in got["metadatas"] or [])
    return total


def clear(index: Index) -> None:
    """Forget every stored segment, intent and manifest (before a rebuild from scratch); the
    segments of states from before a collection per segment lived in this collection too."""
    col = collection(index)
    ids = [i for i in col.get(include=[])["ids"] if i != LOCK_ID]
    if ids:
        col.delete(ids=ids)
    delete_segments(index, segment_keys(index))


# -- intents ---------------------------------------------------------------------------------
@dataclass
class Intent:
    nonce: str
    doc_id: str
    langs: np.ndarray  # the replaced passages' languages and vectors
    vectors: np.ndarray


def put_intents(index: Index, intents: list[Intent]) -> None:
    """Store the intents in one write."""
    metas = []
    for intent in intents:
        buf = io.BytesIO()
        np.savez(buf, langs=intent.langs.astype(str), vectors=intent.vectors.astype(np.float32))
        metas.append(
            {
                "kind": "intent",
                "nonce": intent.nonce,
                "doc_id": intent.doc_id,
                "blob": base64.b64encode(buf.getvalue()).decode(),
            }
        )
    if metas:
        ids = [f"intent:{m['nonce']}" for m in metas]
        units = np.repeat(_UNIT, len(metas), 0)
        collection(index).upsert(ids=ids, embeddings=units, metadatas=metas)


def intents(index: Index) -> list[Intent]:
    got = collection(index).get(where={"kind": "intent"}, include=["metadatas"])
    out = []
    for meta in got["metadatas"] or []:
        with np.load(io.BytesIO(base64.b64decode(str(meta["blob"])))) as z:
            out.append(Intent(str(meta["nonce"]), str(meta["doc_id"]), z["langs"], z["vectors"]))
    return out


def drop_intents(index: Index, nonces: list[str]) -> None:
    if nonces:
        collection(index).delete(ids=[f"intent:{n}" for n in nonces])
