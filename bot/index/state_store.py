"""Where the search state lives: the collection `<name>-search` of the index's own Chroma
(embedded or server), so every process served by one Chroma sees one state.

Records, told apart by the metadata field `kind`:
- `pointer`: the manifest in force, which segments make the state and how far it got;
- `part`: a piece of one segment's bytes (base64, in metadata: Chroma would full-text index a
  document), a segment being written in full before the manifest names it;
- `intent`: a write under way, with the vectors of the passages it replaces, so that a run
  killed half-way is finished by the next one (bot.index.state_writer);
- `lock`: which process writes the state now, until when.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import numpy as np

from bot.errors import BotError
from bot.index.segments import FORMAT, Segment
from bot.index.store import _UNIT, Index
from bot.net import pid_alive

_PART_CHARS = 4_000_000  # base64 characters per Chroma record
_POINTER, _LOCK = "current", "lock"


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

    def dumps(self) -> str:
        return json.dumps({
            "format": FORMAT, "parts": [asdict(p) for p in self.parts], "nonces": self.nonces,
            "retired": [[asdict(p), at] for p, at in self.retired],
        })  # fmt: skip

    @classmethod
    def loads(cls, text: str) -> Manifest | None:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            return None
        return cls([Part(**p) for p in data["parts"]], list(data["nonces"]),
                   [(Part(**p), float(at)) for p, at in data.get("retired", [])])  # fmt: skip


def collection(index: Index) -> Any:
    return index.client.get_or_create_collection(f"{index.name}-search", embedding_function=None)


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


def save_segment(index: Index, key: str, segment: Segment) -> None:
    col = collection(index)
    text = base64.b64encode(segment.dumps()).decode()
    chunks = [text[i : i + _PART_CHARS] for i in range(0, len(text), _PART_CHARS)] or [""]
    for n, chunk in enumerate(chunks):
        meta = {"kind": "part", "key": key, "part": n, "parts": len(chunks), "blob": chunk}
        col.upsert(ids=[f"{key}:{n:04d}"], embeddings=_UNIT, metadatas=[meta])


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
    col, n, parts = collection(index), 0, 1
    while n < parts:
        got = col.get(ids=[f"{key}:{n:04d}"], include=["metadatas"])
        metas = got["metadatas"] or []
        if not metas or not metas[0]:
            return False
        parts = int(metas[0]["parts"])
        into.write(base64.b64decode(str(metas[0]["blob"])))
        n += 1
    return True


def delete_segments(index: Index, keys: list[str]) -> None:
    if keys:
        collection(index).delete(where={"$and": [{"kind": "part"}, {"key": {"$in": keys}}]})


def stored_bytes(index: Index) -> int:
    """The size of the stored segments (base64 as stored)."""
    got = collection(index).get(where={"kind": "part"}, include=["metadatas"])
    return sum(len(str((m or {}).get("blob") or "")) for m in got["metadatas"] or [])


def clear(index: Index) -> None:
    """Forget every stored segment, intent and manifest (before a rebuild from scratch)."""
    col = collection(index)
    ids = [i for i in col.get(include=[])["ids"] if i != _LOCK]
    if ids:
        col.delete(ids=ids)


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
        metas.append({"kind": "intent", "nonce": intent.nonce, "doc_id": intent.doc_id,
                      "blob": base64.b64encode(buf.getvalue()).decode()})  # fmt: skip
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


# -- the writer's lock -----------------------------------------------------------------------
class WriterLock:
    """One writer of the search state at a time, across processes: a lease record in Chroma
    (owner and expiry), renewed as the writer goes. A writer killed holding it blocks others
    for at most LEASE_S (a dead process on this machine, not at all). The writer renews it at
    every batch of articles, so LEASE_S bounds the time one batch's reading and embedding may
    take.
    Chroma has no compare-and-set: the lease is written, then read back."""

    LEASE_S = 300.0

    def __init__(self, index: Index, wait_s: float = 600.0) -> None:
        self.index, self.wait_s = index, wait_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _holder(self) -> tuple[str, float] | None:
        """Who holds the lease, until when (0: its process on this machine is gone)."""
        got = collection(self.index).get(ids=[_LOCK], include=["metadatas"])
        metas = got["metadatas"] or []
        if not metas or not metas[0]:
            return None
        owner, until = str(metas[0]["owner"]), float(metas[0]["until"])
        host, pid, _ = [*owner.split(":"), "", ""][:3]
        if host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid)):
            return owner, 0.0
        return owner, until

    def renew(self) -> None:
        meta = {"kind": "lock", "owner": self.owner, "until": time.time() + self.LEASE_S}
        collection(self.index).upsert(ids=[_LOCK], embeddings=_UNIT, metadatas=[meta])

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:
            holder = self._holder()
            if holder is None or holder[0] == self.owner or holder[1] < time.time():
                self.renew()
                held = self._holder()
                if held is not None and held[0] == self.owner:
                    return
            if time.monotonic() > deadline:
                raise BotError(
                    "Another process has been updating the search index for "
                    f"{self.wait_s:.0f} s (writer {holder[0] if holder else '?'}). Wait for "
                    "its ingestion to end and run again."
                )
            time.sleep(0.2)  # polling another process's lease: nothing to wait on instead

    def release(self) -> None:
        holder = self._holder()
        if holder is not None and holder[0] == self.owner:
            collection(self.index).delete(ids=[_LOCK])
