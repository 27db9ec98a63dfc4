"""The Chroma index: passages (embedded) plus a catalog of articles that commits each write.

An article is written in steps, and the catalog record says how far it got, so that a run
killed at any point can be repaired by the next one without touching other articles:

1. catalog: `pending=<new version>` (the old version, if any, stays searchable);
2. passages of the new version are upserted;
3. catalog: `version=<new version>`, `pending="cleanup"` with the new metadata (the commit);
4. passages of other versions are deleted; 5. catalog: `pending=""`.

Ingestion writes articles in batches (`write_articles`): each step is then one Chroma call for
the whole batch, and each article's record still says how far it got. A run killed before a
batch's commit (3) rolls the batch back; committed batches stay.

`repair()` finishes or rolls back whatever a record with a pending mark left behind.

Beside the passages, `<collection>-translations` holds each article's sentences translated
into the pivot language (bot.answering.pivot), one record per sentence: they are made after
the article is committed, and deleted wherever its passages are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from bot.errors import BotError
from bot.index import errors as store_errors

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from bot.settings import Settings

log = logging.getLogger(__name__)
_BATCH = 256
_UNIT = np.ones(
    (1, 1), dtype=np.float32
)  # the catalog stores no meaning in vectors; Chroma still wants one


def where(settings: Settings) -> str:
    """The index's place, as messages name it."""
    if settings.chroma_host:
        return f"{settings.chroma_host}:{settings.chroma_port}"
    return str(settings.index_dir)


def open_client(settings: Settings) -> ClientAPI:
    """An embedded on-disk client, or an HTTP client when CHROMA_HOST is set; either one's
    calls raise BotErrors that say what failed (bot.index.errors)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    place = where(settings)
    if settings.chroma_host:
        host, port = settings.chroma_host, settings.chroma_port
        client = store_errors.call(
            lambda: chromadb.HttpClient(host=host, port=port, settings=chroma_settings),
            place,
            None,
        )
        return cast("ClientAPI", store_errors.guarded(client, place, None))

    def persistent() -> ClientAPI:
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings)

    client = store_errors.call(persistent, place, settings.index_dir)
    return cast("ClientAPI", store_errors.guarded(client, place, settings.index_dir))


@dataclass
class ArticleWrite:
    """One article's new version: its passages and its catalog record."""

    doc_id: str
    version: str
    previous: dict[str, Any] | None  # its committed catalog record, if it was indexed
    ids: list[str]
    vectors: np.ndarray
    texts: list[str]
    metas: list[dict[str, Any]]
    record: dict[str, Any]


class Index:
    """Passages and the article catalog of one Chroma collection."""

    def __init__(self, client: ClientAPI, name: str, embedder_name: str, dim: int) -> None:
        self.client, self.name, self.dim = client, name, dim
        self.passages: Collection = client.get_or_create_collection(
            name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": embedder_name, "dim": dim},
        )
        built_with = (self.passages.metadata or {}).get("embedder")
        if built_with != embedder_name:
            raise BotError(
                f"The index collection {name!r} was built with the embedder {built_with!r}, "
                f"not {embedder_name!r}. Use the same EMBEDDER, or index into a new "
                "CHROMA_COLLECTION or INDEX_DIR."
            )
        self.catalog: Collection = client.get_or_create_collection(
            f"{name}-catalog", embedding_function=None
        )
        self.translations: Collection = client.get_or_create_collection(
            f"{name}-translations", embedding_function=None
        )

    # -- reading -----------------------------------------------------------------------------
    def articles(self) -> dict[str, dict[str, Any]]:
        """Catalog records by article id (committed or pending)."""
        got = self.catalog.get(include=["metadatas"])
        return {i: dict(m or {}) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)}

    def record(self, doc_id: str) -> dict[str, Any] | None:
        """One article's catalog record (one read by id, whatever the catalog's size)."""
        got = self.catalog.get(ids=[doc_id], include=["metadatas"])
        metas = got["metadatas"] or []
        return dict(metas[0] or {}) if metas else None

    def records(self, doc_ids: list[str], batch: int = 5000) -> dict[str, dict[str, Any]]:
        """The catalog records of these article ids that the index holds (by id)."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(doc_ids), batch):
            got = self.catalog.get(
                ids=sorted(set(doc_ids[start : start + batch])), include=["metadatas"]
            )
            out.update(
                (i, dict(m or {})) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)
            )
        return out

    def translated(self, where: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Stored translated sentences matching the Chroma filter `where`: (text, metadata)."""
        got = self.translations.get(where=cast("Any", where), include=["documents", "metadatas"])
        return [
            (str(text), dict(meta or {}))
            for text, meta in zip(got["documents"] or [], got["metadatas"] or [], strict=True)
        ]

    def put_translations(
        self, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[dict[str, Any]]
    ) -> None:
        for i in range(0, len(ids), _BATCH):
            self.translations.upsert(
                ids=list(ids[i : i + _BATCH]),
                embeddings=np.repeat(_UNIT, len(ids[i : i + _BATCH]), 0),
                documents=list(texts[i : i + _BATCH]),
                metadatas=list(metadatas[i : i + _BATCH]),
            )

    def count(self) -> int:
        return int(self.passages.count())

    def count_articles(self) -> int:
        return int(self.catalog.count())

    # -- writing -----------------------------------------------------------------------------
    def _mark(self, records: dict[str, dict[str, Any]]) -> None:
        if records:
            self.catalog.upsert(
                ids=list(records),
                embeddings=np.repeat(_UNIT, len(records), 0),
                metadatas=list(records.values()),
            )

    def write_articles(self, writes: Sequence[ArticleWrite]) -> None:
        """Steps 1-5 for several articles, each step one call for all of them: a run killed
        at any step leaves each article whole, in its old version or its new one."""
        marks = {
            w.doc_id: {**(w.previous or {"doc_id": w.doc_id, "version": ""}), "pending": w.version}
            for w in writes
        }
        self._mark(marks)
        try:
            self.upsert_passages(
                [i for w in writes for i in w.ids],
                np.concatenate([w.vectors for w in writes]),
                [t for w in writes for t in w.texts],
                [m for w in writes for m in w.metas],
            )
            self._mark({w.doc_id: {**w.record, "pending": "cleanup"} for w in writes})  # commit
        except BotError as exc:
            # the store itself failed (bot.index.errors): after a failed write on a full disk,
            # Chroma's next call can hang for good, so the next run's repair() settles it
            log.warning("could not write %s (%s); the next run rolls it back", list(marks), exc)
            raise
        except BaseException:
            try:
                for doc_id in marks:
                    self._settle(doc_id, self.record(doc_id) or {})
            except BotError as exc:  # the store failed now: the next run's repair() settles it
                log.warning("could not roll back %s now (%s); the next run will", list(marks), exc)
            raise
        self._drop_other_versions({w.doc_id: w.version for w in writes if w.previous})
        self._mark({w.doc_id: {**w.record, "pending": ""} for w in writes})

    def upsert_passages(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        documents: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        for i in range(0, len(ids), _BATCH):
            self.passages.upsert(
                ids=list(ids[i : i + _BATCH]),
                embeddings=embeddings[i : i + _BATCH],
                documents=list(documents[i : i + _BATCH]),
                metadatas=list(metadatas[i : i + _BATCH]),
            )

    def remove(self, doc_id: str) -> None:
        record = self.record(doc_id) or {"doc_id": doc_id}
        self._mark({doc_id: {**record, "pending": "delete"}})
        self.passages.delete(where={"doc_id": doc_id})
        self.translations.delete(where={"doc_id": doc_id})
        self.catalog.delete(ids=[doc_id])

    def _drop_other_versions(self, versions: dict[str, str]) -> None:
        """Delete the passages of each article (key) that are not of its version ("": all)."""
        where = other_versions(versions)
        if where is not None:
            self.passages.delete(where=where)
            self.translations.delete(where=where)

    def repair(self) -> list[str]:
        """Finish or roll back articles a killed run left half-written; their ids."""
        repaired = []
        pending: Any = {"pending": {"$ne": ""}}
        got = self.catalog.get(where=pending, include=["metadatas"])
        for doc_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            record = dict(meta or {})
            if record.get("pending"):
                repaired.append(doc_id)
                self._settle(doc_id, record)
        return sorted(repaired)

    def _settle(self, doc_id: str, record: dict[str, Any]) -> None:
        """Roll a pending article back to its committed version, or finish its commit."""
        if record.get("pending") == "delete" or not record.get("version"):
            self.passages.delete(where={"doc_id": doc_id})
            self.translations.delete(where={"doc_id": doc_id})
            self.catalog.delete(ids=[doc_id])
            return
        self._drop_other_versions({doc_id: str(record["version"])})
        self._mark({doc_id: {**record, "pending": ""}})

    def problems(self) -> list[str]:
        """Inconsistencies between catalog and passages; empty when the index is sound."""
        records = self.articles()
        found = []
        got = self.passages.get(include=["metadatas"])
        by_doc: dict[str, list[dict[str, Any]]] = {}
        for meta in got["metadatas"] or []:
            by_doc.setdefault(str(meta.get("doc_id")), []).append(dict(meta))
        for doc_id, metas in by_doc.items():
            record = records.get(doc_id)
            if record is None:
                found.append(f"{doc_id}: {len(metas)} orphan passages")
                continue
            stale = [m for m in metas if m.get("version") != record.get("version")]
            if stale:
                found.append(f"{doc_id}: {len(stale)} passages of another version")
        for doc_id, record in records.items():
            if record.get("pending"):
                found.append(f"{doc_id}: half-written ({record['pending']})")
            have = len(by_doc.get(doc_id, []))
            if have != int(record.get("n_passages", -1)):
                found.append(f"{doc_id}: {have} passages, catalog says {record.get('n_passages')}")
        return found


def other_versions(versions: dict[str, str]) -> dict[str, Any] | None:
    """The Chroma filter for the passages of each article (key) that are not of its version
    ("": all of them); None for no articles."""
    clauses: list[dict[str, Any]] = [
        {"$and": [{"doc_id": doc_id}, {"version": {"$ne": version}}]}
        if version
        else {"doc_id": doc_id}
        for doc_id, version in versions.items()
    ]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def open_index(settings: Settings, embedder_name: str, dim: int) -> Index:
    client = open_client(settings)
    try:
        return Index(client, settings.chroma_collection, embedder_name, dim)
    except BotError:
        raise
    except Exception as exc:
        raise BotError(f"Cannot open the index at {where(settings)} ({exc}).") from exc
