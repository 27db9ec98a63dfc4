"""Watch folders: index article files as they land or change, one event per article.

A file is read once it has stopped changing: the same size and modification time in two scans,
and last modified at least `settle_s` ago, so a file still being copied in is not read half-way.
Download and editor temporaries (.part, .crdownload, .tmp, ~ ...) and hidden files are left
until they are renamed. A file that fails is reported once and tried again only when it changes;
a file that changed while it was read is read again once it settles.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from bot.errors import BotError
from bot.index.store import open_index
from bot.models.embeddings import Embedder, make_embedder
from bot.settings import Settings
from ingest.pipeline import FileResult, from_files, ingest_paths, remove_articles
from ingest.readers import find_files

log = logging.getLogger(__name__)

SETTLE_S = 2.0  # a file unchanged this long is taken as fully written
INTERVAL_S = 1.0  # seconds between scans
TEMPORARY = (".part", ".partial", ".crdownload", ".download", ".tmp", ".temp", ".swp", "~")


@dataclass(frozen=True)
class Stamp:
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Event:
    """What happened to one file: an ingestion result ("added", "updated", "failed",
    "removed"), "waiting" (seen changing between two scans, once per file) or "error" (the
    index could not be written; the files are tried again at the next scan)."""

    status: str
    name: str
    doc_id: str = ""
    passages: int = 0
    reason: str = ""

    def line(self) -> str:
        what = self.doc_id or self.name
        if self.status in ("added", "updated"):
            return f"{self.status:<8} {what} ({self.passages} passages, from {self.name})"
        if self.status == "waiting":
            return f"waiting  {self.name} (still being written)"
        if self.status == "failed":
            what = self.name
        return f"{self.status:<8} {what}" + (f": {self.reason}" if self.reason else "")


def stamp(path: Path) -> Stamp | None:
    try:
        st = path.stat()
    except OSError:  # gone between the listing and now
        return None
    return Stamp(st.st_size, st.st_mtime_ns)


class Watcher:
    """Index what changes under `paths`; call `step()` once per scan or `run()` until stopped."""

    def __init__(
        self,
        paths: list[Path],
        settings: Settings,
        embedder: Embedder | None = None,
        *,
        settle_s: float = SETTLE_S,
        prune: bool = False,
        on_event: Callable[[Event], None] = lambda event: None,
        clock: Callable[[], float] = time.time,
        lock: AbstractContextManager[object] | None = None,
    ) -> None:
        self.paths, self.settings = paths, settings
        self.embedder = embedder or make_embedder(settings)
        self.settle_s, self.prune, self.on_event, self.clock = settle_s, prune, on_event, clock
        self.seen: dict[Path, Stamp] | None = None  # the previous scan (None: none yet)
        self.done: dict[Path, Stamp] = {}  # handled at this stamp: indexed, unchanged or reported
        self.indexed: set[Path] = set()  # files whose article is in the index
        self.waiting: set[Path] = set()  # reported as still being written
        self.error = ""  # the last store error, reported once
        self.lock = lock or nullcontext()  # held by each scan (other writers in this process)

    def scan(self) -> dict[Path, Stamp]:
        files = [p for p in find_files(self.paths) if not p.name.endswith(TEMPORARY)]
        return {p: s for p in files if (s := stamp(p)) is not None}

    def prime(self) -> None:
        """Take the files as they are now as handled (their articles just ingested by the
        caller): only what changes after this is indexed."""
        self.seen = self.scan()
        self.done = dict(self.seen)
        self.indexed = set(self.seen)

    def step(self) -> list[Event]:
        """One scan: index the files that changed and settled, remove the articles of deleted
        files (with `prune`); returns the events, each also passed to `on_event`."""
        with self.lock:
            events = self._step()
        for event in events:
            self.on_event(event)
        return events

    def _step(self) -> list[Event]:
        now, current = self.clock(), self.scan()
        first, previous = self.seen is None, self.seen or {}
        ready, events = [], []
        for path, st in current.items():
            if self.done.get(path) == st:
                continue
            before, rested = previous.get(path), now - st.mtime_ns / 1e9 >= self.settle_s
            if rested and (first or before == st):
                ready.append(path)
            elif not rested and before not in (None, st) and path not in self.waiting:
                self.waiting.add(path)  # seen changing, and changed lately: say so once
                events.append(Event("waiting", path.name, path.stem))
        gone = [p for p in self.done if p not in current]
        self.seen = current
        try:
            if first and self.prune:
                events += self._prune_index(current)
            events += self._ingest(ready, current) + self._forget(gone, current)
        except BotError as exc:
            if str(exc) != self.error:
                events.append(Event("error", "", reason=str(exc)))
            self.error = str(exc)
        else:
            self.error = ""
        return events

    def _ingest(self, ready: list[Path], current: dict[Path, Stamp]) -> list[Event]:
        if not ready:
            return []
        summary = ingest_paths(ready, self.settings, self.embedder, progress=False)
        events = []
        for path, result in zip(ready, summary.results, strict=True):
            self.waiting.discard(path)
            if stamp(path) != current[path]:
                continue  # changed while it was read: read again once it settles
            self.done[path] = current[path]
            if result.status == "failed":
                self.indexed.discard(path)
            else:
                self.indexed.add(path)
            if result.status != "unchanged":
                events.append(_event(result))
        return events

    def _forget(self, gone: list[Path], current: dict[Path, Stamp]) -> list[Event]:
        """Deleted files are forgotten; with `prune`, so is their article, unless another
        file of the same article id is still there."""
        stems = {p.stem for p in current}
        doomed = sorted({p.stem for p in gone if p in self.indexed and p.stem not in stems})
        for path in gone:
            del self.done[path]
            self.indexed.discard(path)
            self.waiting.discard(path)
        return self._remove(doomed) if self.prune else []

    def _prune_index(self, current: dict[Path, Stamp]) -> list[Event]:
        """First scan with `prune`: articles of files no longer under the paths go."""
        index = open_index(self.settings, self.embedder.name, self.embedder.dim)
        return self._remove(sorted(set(from_files(index.articles())) - {p.stem for p in current}))

    def _remove(self, doc_ids: list[str]) -> list[Event]:
        if not doc_ids:
            return []
        return [_event(r) for r in remove_articles(doc_ids, self.settings, self.embedder).results]

    def run(self, stop: threading.Event, interval: float = INTERVAL_S) -> None:
        """Scan every `interval` seconds until `stop` is set."""
        while True:
            try:
                self.step()
            except Exception:  # one bad scan must not end the watch: the next one tries again
                log.exception("watching %s failed", ", ".join(map(str, self.paths)))
            if stop.wait(interval):
                return


def _event(result: FileResult) -> Event:
    return Event(result.status, result.name, result.doc_id, result.passages, result.reason)
