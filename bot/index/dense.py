"""Chroma's own vector index, one collection per article language, for dense search that does
not hold every vector in every process (bot.retrieval.retriever, beyond DENSE_MEMORY_MAX).

Dense search ranks passages by their similarity standardised within their language, so it asks
each language for its nearest passages; a `where` on the language over one collection took
~100 ms at 10k passages, a collection per language ~1 ms. The collections hold each live
passage's vector with its article and day (for filters) and nothing else; the search state's
writer keeps them in step with its segments (bot.index.state_writer), and the search state
decides which of their passages count (a passage replaced a moment ago may still be here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from bot.errors import BotError
from bot.index.errors import is_missing
from bot.index.store import Index, other_versions

_BATCH = 1000
# Chroma's HNSW: candidates kept while building and while searching (Chroma's defaults are
# 100, which found 96% of exact search's top 10 at 100k passages; these found all of it,
# docs/benchmarks.md). Fixed when a collection is made: a change needs the state rebuilt.
EF_CONSTRUCTION = 400
EF_SEARCH = 400


def _suffix(lang: str) -> str:
    return re.sub(r"[^a-z0-9]", "x", lang.lower()) or "xx"


def day(date: str) -> int | None:
    """YYYY-MM-DD as the number YYYYMMDD (Chroma compares numbers only); None otherwise."""
    return int(date.replace("-", "")) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) else None


class DenseIndex:
    """The per-language vector collections `<index>-dense-<lang>` of one index."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.prefix = f"{index.name}-dense-"
        self._collections: dict[str, Any] = {}

    def collection(self, lang: str) -> Any:
        name = self.prefix + _suffix(lang)
        if name not in self._collections:
            self._collections[name] = self.index.client.get_or_create_collection(
                name,
                embedding_function=None,
                configuration={
                    "hnsw": {
                        "space": "cosine",
                        "ef_search": EF_SEARCH,
                        "ef_construction": EF_CONSTRUCTION,
                    }
                },
            )
        return self._collections[name]

    def write(
        self,
        ids: Sequence[str],
        langs: np.ndarray,
        vectors: np.ndarray,
        metas: Sequence[dict[str, Any]],
    ) -> None:
        """Add (or overwrite) passages: each under its language."""
        for lang in sorted(set(langs.tolist())):
            rows = np.flatnonzero(langs == lang)
            for start in range(0, len(rows), _BATCH):
                chunk = rows[start : start + _BATCH]
                self.collection(lang).upsert(
                    ids=[ids[n] for n in chunk],
                    embeddings=vectors[chunk],
                    metadatas=[_meta(metas[n]) for n in chunk],
                )

    def drop(self, versions: dict[str, str], langs: set[str]) -> None:
        """Delete each article's (key) passages that are not of its version ("": all) from
        the collections of these languages."""
        where = other_versions(versions)
        if where is None:
            return
        for lang in sorted(langs):
            self.collection(lang).delete(where=where)

    def nearest(
        self, lang: str, vector: np.ndarray, n: int, where: dict[str, Any] | None
    ) -> tuple[list[str], np.ndarray]:
        """The ids of the `n` passages of `lang` nearest to `vector` and their cosine
        similarity (Chroma's approximate index)."""

        def ask() -> Any:
            return self.collection(lang).query(
                query_embeddings=[vector.astype(np.float32)],
                n_results=n,
                where=where,
                include=["distances"],
            )

        try:
            got = ask()
        except BotError as exc:
            if not is_missing(exc):
                raise
            # another process built the collections again (a new state): find them anew
            self._collections.clear()
            got = ask()
        ids = list(got["ids"][0]) if got["ids"] else []
        distances = np.asarray((got["distances"] or [[]])[0], dtype=np.float64)
        return ids, 1.0 - distances

    def names(self) -> list[str]:
        return [
            c.name for c in self.index.client.list_collections() if c.name.startswith(self.prefix)
        ]

    def ids(self) -> set[str]:
        """Every passage id the collections hold (a consistency check: reads them all)."""
        return {
            i
            for n in self.names()
            for i in self.index.client.get_collection(n).get(include=[])["ids"]
        }

    def reset(self) -> None:
        """Delete every language's collection (before the whole state is built again)."""
        for name in self.names():
            self.index.client.delete_collection(name)
        self._collections.clear()


def _meta(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "doc_id": str(meta.get("doc_id") or ""),
        "version": str(meta.get("version") or ""),
    }
    when = day(str(meta.get("date") or ""))
    if when is not None:
        out["day"] = when
    return out


def where(doc_ids: Sequence[str], date_from: str, date_to: str) -> dict[str, Any] | None:
    """The Chroma filter for a search's article and date filters; None for none. The search
    state's own filter applies after it, so a date Chroma cannot compare only narrows."""
    clauses: list[dict[str, Any]] = []
    if doc_ids:
        clauses.append({"doc_id": {"$in": list(doc_ids)}})
    if date_from:
        clauses.append({"day": {"$gte": day(date_from) or 0}})
    if date_to:
        clauses.append({"day": {"$lte": day(date_to) or 99999999}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
