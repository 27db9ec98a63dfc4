"""What retrieval keeps beside Chroma's vectors, persisted in Chroma itself.

For BM25, filters and per-language score standardisation, retrieval needs every passage's
tokens, language, article and date, and each language's vector mean and covariance. Building
that takes minutes at 100k passages (Thai word segmentation alone), so ingestion builds it,
reusing the tokens of passages it already had, and stores it as one compressed snapshot in
the collection `<name>-search` of the same Chroma (embedded or server). A process only loads
it: nothing is rebuilt per query or per start, and several UI processes served by one Chroma
server share it, holding no state of their own.

A record `current` names the snapshot in force; a new one is written in full before the
pointer moves, so readers never see half of one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.index.lexical import LexicalIndex, tokenize
from bot.index.store import _UNIT, Index

log = logging.getLogger(__name__)

_PART_CHARS = 4_000_000  # base64 characters per Chroma record
# snapshots saved by this process: a searcher here rechecks at once after an ingestion here
saved_here = 0
_POINTER = "current"
FORMAT = "1"  # bump when the snapshot's contents change


@dataclass
class LangStats:
    """Mean and covariance of one language's passage vectors: the mean and variance of a
    query's cosine similarity to that language's passages follow from them exactly."""

    mean: np.ndarray
    cov: np.ndarray

    def zscore(self, vector: np.ndarray, sims: np.ndarray) -> np.ndarray:
        std = float(np.sqrt(max(float(vector @ self.cov @ vector), 1e-12)))
        return (sims - float(vector @ self.mean)) / std


@dataclass
class SearchState:
    key: str  # which catalog it describes
    ids: np.ndarray  # passage ids, by position
    lang: np.ndarray
    doc_id: np.ndarray
    date: np.ndarray
    langs: dict[str, LangStats]
    lexical: LexicalIndex
    vocab: list[str]
    offsets: np.ndarray  # passage i's token ids: tokens[offsets[i]:offsets[i+1]]
    tokens: np.ndarray
    # passage vectors by position, float32 [N, dim]: read from the passages collection (not
    # stored twice), so dense search is one matrix product in process
    vectors: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.position = {str(i): n for n, i in enumerate(self.ids)}
        self.lang_rows = {lang: np.flatnonzero(self.lang == lang) for lang in self.langs}

    def attach_vectors(self, index: Index, previous: SearchState | None, batch: int = 1000) -> None:
        """Read the vectors, reusing those `previous` already holds."""
        if self.vectors is not None:
            return
        held = previous.vectors if previous is not None else None
        rows: dict[int, np.ndarray] = {}
        missing: list[str] = []
        for n, pid in enumerate(self.ids.tolist()):
            old = previous.position.get(pid) if previous is not None else None
            if old is None or held is None:
                missing.append(pid)
            else:
                rows[n] = held[old]
        for start in range(0, len(missing), batch):
            got = index.passages.get(ids=missing[start : start + batch], include=["embeddings"])
            for pid, vec in zip(got["ids"], got["embeddings"], strict=True):  # type: ignore[arg-type]
                rows[self.position[pid]] = np.asarray(vec, dtype=np.float32)
        dim = len(next(iter(rows.values()))) if rows else 1
        self.vectors = np.zeros((len(self.ids), dim), dtype=np.float32)
        for n, vec in rows.items():
            self.vectors[n] = vec

    def passage_tokens(self) -> dict[str, np.ndarray]:
        if not len(self.tokens) and self.offsets[-1]:
            return {}  # dropped by a searcher (see drop_tokens): nothing to reuse
        return {str(i): self.tokens[self.offsets[n] : self.offsets[n + 1]]
                for n, i in enumerate(self.ids)}  # fmt: skip

    def drop_tokens(self) -> None:
        """Forget the per-passage token lists: only a rebuild reuses them, searches never
        (~40 MB at 100k passages)."""
        self.tokens = np.zeros(0, dtype=np.int32)

    # -- bytes ----------------------------------------------------------------------------
    def dumps(self) -> bytes:
        arrays: dict[str, np.ndarray] = {
            "ids": self.ids, "lang": self.lang, "doc_id": self.doc_id, "date": self.date,
            "vocab": np.array(self.vocab, dtype=str), "offsets": self.offsets,
            "tokens": self.tokens, "lang_names": np.array(sorted(self.langs), dtype=str),
            "w_indptr": self.lexical.indptr, "w_rows": self.lexical.rows,
            "w_weights": self.lexical.weights,
            "key": np.array([self.key, FORMAT]),
        }  # fmt: skip
        for n, lang in enumerate(sorted(self.langs)):
            arrays[f"mean{n}"], arrays[f"cov{n}"] = self.langs[lang].mean, self.langs[lang].cov
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def loads(cls, raw: bytes) -> SearchState:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            key, fmt = (str(x) for x in z["key"])
            if fmt != FORMAT:
                raise ValueError(f"snapshot format {fmt}, expected {FORMAT}")
            vocab = [str(v) for v in z["vocab"]]
            langs = {str(name): LangStats(z[f"mean{n}"], z[f"cov{n}"])
                     for n, name in enumerate(z["lang_names"])}  # fmt: skip
            lexical = LexicalIndex({v: n for n, v in enumerate(vocab)}, len(z["ids"]),
                                   z["w_indptr"], z["w_rows"], z["w_weights"])  # fmt: skip
            return cls(key, z["ids"], z["lang"], z["doc_id"], z["date"], langs, lexical,
                       vocab, z["offsets"], z["tokens"])  # fmt: skip


def catalog_key(index: Index) -> str:
    """Names the committed contents of the index: the version of every article."""
    versions = sorted((d, str(r.get("version")), str(r.get("pending", "")))
                      for d, r in index.articles().items())  # fmt: skip
    return hashlib.sha256(repr(versions).encode()).hexdigest()[:16]


def _collection(index: Index) -> Any:
    return index.client.get_or_create_collection(f"{index.name}-search", embedding_function=None)


def current_key(index: Index) -> str | None:
    got = _collection(index).get(ids=[_POINTER], include=["metadatas"])
    metas = got["metadatas"] or []
    return str(metas[0]["current"]) if metas and metas[0] else None


def load(index: Index) -> SearchState | None:
    """The snapshot in force, or None when there is none (or it cannot be read)."""
    col = _collection(index)
    for _ in range(3):  # the pointer may move while we read: try again
        key = current_key(index)
        if key is None:
            return None
        got = col.get(where={"key": key}, include=["metadatas"])
        parts = sorted((dict(m) for m in got["metadatas"] or [] if m), key=lambda m: int(m["part"]))
        if parts and len(parts) == int(parts[0]["parts"]):
            try:
                text = "".join(str(m.pop("blob")) for m in parts)
                del got, parts
                return SearchState.loads(base64.b64decode(text))
            except Exception as exc:
                log.warning("search snapshot %s unreadable (%s): rebuilding", key, exc)
                return None
    return None


def save(index: Index, state: SearchState) -> None:
    col = _collection(index)
    text = base64.b64encode(state.dumps()).decode()
    chunks = [text[i : i + _PART_CHARS] for i in range(0, len(text), _PART_CHARS)] or [""]
    ids = [f"{state.key}:{n:04d}" for n in range(len(chunks))]
    for n, (pid, chunk) in enumerate(zip(ids, chunks, strict=True)):
        # in metadata, not as a document: Chroma would full-text index a document
        meta = {"key": state.key, "part": n, "parts": len(chunks), "blob": chunk}
        col.upsert(ids=[pid], embeddings=_UNIT, metadatas=[meta])
    col.upsert(ids=[_POINTER], embeddings=_UNIT, metadatas=[{"current": state.key}])
    global saved_here
    saved_here += 1
    col.delete(where={"$and": [{"key": {"$ne": state.key}}, {"part": {"$gte": 0}}]})


def build(index: Index, previous: SearchState | None = None, batch: int = 5000) -> SearchState:
    """A snapshot of the index as it is, tokenizing only passages `previous` lacks."""
    key = catalog_key(index)
    known = previous.passage_tokens() if previous else {}
    vocab_list = list(previous.vocab) if previous else []
    vocab = {v: n for n, v in enumerate(vocab_list)}
    ids: list[str] = []
    metas: list[dict[str, Any]] = []
    per_passage: list[np.ndarray] = []
    all_vectors: list[np.ndarray] = []
    sums: dict[str, list[Any]] = {}
    total = index.count()
    for start in range(0, max(total, 1), batch):
        got = index.passages.get(include=["metadatas", "embeddings"], limit=batch, offset=start)
        new = [i for i in got["ids"] if i not in known]
        texts = dict(zip(new, _documents(index, new), strict=True))
        vectors = np.asarray(got["embeddings"], dtype=np.float64)
        all_vectors.append(vectors.astype(np.float32))
        batch_langs = []
        for pid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            ids.append(pid)
            metas.append(dict(meta or {}))
            batch_langs.append(str((meta or {}).get("lang") or ""))
            if pid in known:
                per_passage.append(known[pid])
            else:
                toks = [vocab.setdefault(t, len(vocab)) for t in tokenize(texts[pid])]
                per_passage.append(np.array(toks, dtype=np.int32))
        for lang in set(batch_langs):
            rows = vectors[np.array(batch_langs) == lang]
            acc = sums.setdefault(lang, [0, 0.0, 0.0])
            acc[0] += len(rows)
            acc[1] = acc[1] + rows.sum(axis=0)
            acc[2] = acc[2] + rows.T @ rows
    vocab_list = [""] * len(vocab)
    for word, n in vocab.items():
        vocab_list[n] = word
    lengths = np.array([len(t) for t in per_passage], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = np.concatenate(per_passage) if per_passage else np.zeros(0, dtype=np.int32)
    langs = {}
    for lang, (n, s1, s2) in sums.items():
        mean = s1 / n
        cov = (s2 - n * np.outer(mean, mean)) / max(n - 1, 1) if n > 1 else np.eye(len(mean))
        langs[lang] = LangStats(mean.astype(np.float32), cov.astype(np.float32))

    def column(name: str) -> np.ndarray:
        return np.array([str(m.get(name) or "") for m in metas], dtype=str)

    matrix = np.concatenate(all_vectors) if all_vectors else None
    return SearchState(
        key, np.array(ids, dtype=str), column("lang"), column("doc_id"), column("date"), langs,
        LexicalIndex.build(vocab, offsets, tokens), vocab_list, offsets, tokens, matrix,
    )  # fmt: skip


def _documents(index: Index, ids: list[str]) -> list[str]:
    if not ids:
        return []
    got = index.passages.get(ids=ids, include=["documents"])
    by_id = dict(zip(got["ids"], got["documents"] or [], strict=True))
    return [str(by_id.get(i) or "") for i in ids]


def rebuild(index: Index, previous: SearchState | None) -> SearchState:
    """Build a snapshot of the index as it is now and make it the one in force."""
    state = build(index, previous)
    save(index, state)
    return state


def is_current(index: Index) -> bool:
    """Whether the snapshot in force describes the index as it is (two small reads)."""
    return current_key(index) == catalog_key(index)


def refresh(index: Index) -> bool:
    """After ingestion: bring the stored snapshot in line with the index; True when it had to
    be rebuilt. Cheap when nothing changed (nothing loaded)."""
    if is_current(index):
        return False
    rebuild(index, load(index))
    return True
