"""Ingest files into the index: skip unchanged articles, replace changed ones, prune removed ones.

Each file is read, cleaned, described, chunked and embedded before anything is written, so
a bad file never touches the index; the write itself is committed per article (bot.index.store).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bot.errors import BotError
from bot.index.state_writer import StateWriter
from bot.index.store import Index, open_index
from bot.models.embeddings import Embedder, make_embedder
from bot.settings import Settings
from ingest.batch import Batch, Queued, check_space
from ingest.chunking import Passage, chunk_text
from ingest.clean import clean_article
from ingest.metadata import ArticleMeta, content_hash, describe
from ingest.readers import SkipFile, find_files, read_article

log = logging.getLogger(__name__)

# Bump when cleaning or chunking changes, so the next run re-indexes every article.
PIPELINE_VERSION = "1"
STATUSES = ("added", "updated", "unchanged", "failed", "removed")


@dataclass
class FileResult:
    name: str
    doc_id: str
    status: str
    reason: str = ""
    passages: int = 0


@dataclass
class Summary:
    results: list[FileResult] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    seconds: float = 0.0
    total_passages: int = 0
    total_articles: int = 0

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.results)

    @property
    def written(self) -> int:
        return sum(r.passages for r in self.results if r.status in ("added", "updated"))

    @property
    def ok(self) -> bool:
        """False only when there were files and none of them could be ingested."""
        counts = self.counts
        return sum(counts[s] for s in ("added", "updated", "unchanged")) > 0 or not any(
            r.status == "failed" for r in self.results
        )

    def report(self) -> str:
        counts = self.counts
        lines = [f"  failed  {r.name}: {r.reason}" for r in self.results if r.status == "failed"]
        if self.repaired:
            lines.append(f"  repaired half-written articles: {', '.join(self.repaired)}")
        tally = ", ".join(f"{counts[s]} {s}" for s in STATUSES)
        changed = self.written or counts["removed"] or self.repaired
        lines.append(
            f"Articles: {tally}. Passages written: {self.written}. "
            f"Index: {self.total_articles} articles, {self.total_passages} passages. "
            f"{self.seconds:.1f} s."
        )
        if not changed:
            lines.append("Index is up to date: nothing written.")
        return "\n".join(lines)


def signature(settings: Settings, embedder: Embedder) -> str:
    """What, besides the file, decides the passages: a change re-indexes every article."""
    parts = [
        PIPELINE_VERSION,
        embedder.name,
        str(settings.chunk_size),
        str(settings.chunk_min),
        str(settings.chunk_overlap),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


@dataclass
class Prepared:
    meta: ArticleMeta
    passages: list[Passage]


def prepare(path: Path, settings: Settings, embedder: Embedder) -> tuple[Prepared, bytes]:
    """Read, clean, describe and chunk one file (SkipFile when it holds no article)."""
    raw, data = read_article(path, settings.max_file_bytes)
    cleaned = clean_article(raw.text)
    if not cleaned.paragraphs:
        raise SkipFile("nothing left after removing site boilerplate")
    meta = describe(path, data, cleaned, raw.meta)
    passages = chunk_text(
        cleaned.text,
        embedder.count_tokens,
        size=settings.chunk_size,
        min_size=settings.chunk_min,
        overlap=settings.chunk_overlap,
        lang=meta.lang,
    )
    return Prepared(meta, passages), data


def ingest_paths(
    paths: list[Path],
    settings: Settings,
    embedder: Embedder | None = None,
    prune: bool = False,
    progress: bool = True,
    on_file: Callable[[int, int, Path], None] | None = None,
) -> Summary:
    """Bring the index in line with the article files under `paths`.

    `on_file(i, n, path)` is called before each of the n files (i from 0), for progress displays.
    """
    embedder = embedder or make_embedder(settings)
    sig = signature(settings, embedder)
    seen: dict[str, Path] = {}
    files = find_files(paths)
    bar = tqdm(files, desc="Ingesting", unit="file", disable=not progress, leave=False)
    with _writing(settings, embedder) as (index, writer, summary):
        # the whole catalog only when pruning needs it; else the records of these files' ids
        catalog = index.articles() if prune else index.records([p.stem for p in files])
        batch = Batch(settings, index, writer, embedder)
        for i, path in enumerate(bar):
            bar.set_postfix_str(path.name)
            if on_file:
                on_file(i, len(files), path)
            result, queued = _ingest_one(path, settings, embedder, catalog, sig, seen)
            summary.results.append(result)
            if queued is not None:
                batch.add(queued)
        batch.write()
        if prune:
            for doc_id in sorted(set(from_files(catalog)) - set(seen)):
                _remove(index, writer, doc_id, embedder.dim)
                summary.results.append(FileResult(doc_id, doc_id, "removed"))
    return summary


def from_files(catalog: dict[str, dict[str, Any]]) -> list[str]:
    """The articles of `catalog` that came from files: pruning a folder leaves those fetched
    from the web (ingest.web) alone."""
    return [doc_id for doc_id, record in catalog.items() if not record.get("origin")]


@contextmanager
def _writing(
    settings: Settings, embedder: Embedder
) -> Iterator[tuple[Index, StateWriter, Summary]]:
    """The index open for writing: articles a killed run left half-written repaired, the
    search state's writer held (it follows every article's write); totals filled at the end."""
    started = time.perf_counter()
    index = open_index(settings, embedder.name, embedder.dim)
    check_space(settings, [], embedder.dim)  # before the first write (repairs included)
    summary = Summary(repaired=index.repair())
    with StateWriter(index) as writer:  # finishes what a killed run left of the state
        yield index, writer, summary
    summary.total_articles = index.count_articles()
    summary.total_passages = index.count()
    summary.seconds = time.perf_counter() - started


def _remove(index: Index, writer: StateWriter, doc_id: str, dim: int) -> None:
    nonces = writer.begin([doc_id])
    index.remove(doc_id)
    writer.publish(nonces, [], [], [], np.zeros((0, dim), np.float32))


def remove_articles(
    doc_ids: list[str], settings: Settings, embedder: Embedder | None = None
) -> Summary:
    """Take articles out of the index by id (their files are left alone); an id the index
    does not hold is reported as failed."""
    embedder = embedder or make_embedder(settings)
    with _writing(settings, embedder) as (index, writer, summary):
        for doc_id in doc_ids:
            if index.record(doc_id) is None:
                summary.results.append(FileResult(doc_id, doc_id, "failed", "not in the index"))
                continue
            _remove(index, writer, doc_id, embedder.dim)
            summary.results.append(FileResult(doc_id, doc_id, "removed"))
    return summary


def _ingest_one(
    path: Path,
    settings: Settings,
    embedder: Embedder,
    catalog: dict[str, dict[str, Any]],
    sig: str,
    seen: dict[str, Path],
) -> tuple[FileResult, Queued | None]:
    """The file's result, and the article to write when it is new or changed (its result's
    status then says what the write will do; a failed write changes it)."""
    doc_id = path.stem
    if doc_id in seen:
        return FileResult(path.name, doc_id, "failed", f"same article id as {seen[doc_id]}"), None
    seen[doc_id] = path
    previous = catalog.get(doc_id)
    try:
        if previous and path.is_file() and path.stat().st_size <= settings.max_file_bytes:
            version = _version(content_hash(path.read_bytes()), sig)
            if previous.get("version") == version:
                return FileResult(path.name, doc_id, "unchanged", passages=0), None
        prepared, data = prepare(path, settings, embedder)
        version = _version(content_hash(data), sig)
    except SkipFile as exc:
        return FileResult(path.name, doc_id, "failed", str(exc)), None
    except OSError as exc:
        reason = f"cannot read: {exc.strerror or exc}"
        return FileResult(path.name, doc_id, "failed", reason), None
    except BotError:
        raise
    except Exception as exc:  # one bad article must not stop the run
        log.exception("ingesting %s failed", path)
        return FileResult(path.name, doc_id, "failed", f"{type(exc).__name__}: {exc}"), None
    status = "updated" if previous else "added"
    result = FileResult(path.name, doc_id, status, passages=len(prepared.passages))
    return result, Queued(prepared, version, previous, result)


def _version(file_hash: str, sig: str) -> str:
    return hashlib.sha256(f"{file_hash}|{sig}".encode()).hexdigest()[:16]
