"""A watched folder (`python -m ingest --watch`, WATCH_DATA_DIR): files are indexed as they land
or change, never half-written, and a bad file is reported once.

The step tests drive the watcher scan by scan with a clock they set and files whose times they
set, so no test depends on how fast the machine is; the command-line test runs the real command
with the real embedder and waits on its lines.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.index.store import open_index
from bot.models.embeddings import FakeEmbedder
from bot.models.fake_llm import FakeChat
from bot.settings import Settings
from ingest.pipeline import prepare
from ingest.watch import Event, Watcher
from tests.conftest import CORPUS, IDS, ROOT, make_settings
from webui.backend import Backend

SETTLE = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def put(path: Path, data: bytes, mtime: float) -> None:
    """Write `path` as if it was last modified at `mtime` (the watcher's clock)."""
    path.write_bytes(data)
    os.utime(path, ns=(int(mtime * 1e9), int(mtime * 1e9)))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "incoming"
    path.mkdir()
    return path


@pytest.fixture
def settings(tmp_path: Path, folder: Path) -> Settings:
    return make_settings(tmp_path, data_dir=folder, embedder="fake")


def watcher(settings: Settings, clock: Clock, prune: bool = False) -> Watcher:
    return Watcher(
        [settings.data_dir], settings, FakeEmbedder(), settle_s=SETTLE, prune=prune, clock=clock
    )


def statuses(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.status, e.doc_id or e.name) for e in events]


def article(i: int) -> bytes:
    return (CORPUS / f"{IDS[i]}.txt").read_bytes()


def test_new_changed_and_deleted_files_are_followed(settings: Settings, folder: Path) -> None:
    clock = Clock()
    watch = watcher(settings, clock, prune=True)
    put(folder / "a.txt", article(2), clock.now - 60)
    assert statuses(watch.step()) == [("added", "a")]  # settled at the first scan
    assert watch.step() == []  # nothing new: nothing read
    clock.now += 10
    put(folder / "b.txt", article(3), clock.now)
    assert watch.step() == []  # just landed: it may still grow
    clock.now += SETTLE
    assert statuses(watch.step()) == [("added", "b")]
    put(folder / "a.txt", article(2), clock.now - SETTLE)  # touched, same bytes
    assert watch.step() == [] and watch.step() == []  # read, unchanged: no line
    put(folder / "a.txt", article(2) + b"\n\nA late paragraph on the port.\n", clock.now - SETTLE)
    watch.step()
    assert statuses(watch.step()) == [("updated", "a")]
    (folder / "b.txt").unlink()
    assert statuses(watch.step()) == [("removed", "b")]
    index = open_index(settings, "fake-hashing", FakeEmbedder.dim)
    assert set(index.articles()) == {"a"}


def test_a_file_being_written_is_read_only_once_it_is_complete(
    settings: Settings, folder: Path
) -> None:
    clock = Clock()
    watch = watcher(settings, clock)
    assert watch.step() == []
    full = article(0)
    half = full[: len(full) // 2]
    embedder = FakeEmbedder()
    path = folder / "growing.txt"
    put(path, half, clock.now)
    clock.now += 0.5
    assert watch.step() == []  # modified 0.5 s ago: not read
    put(path, full, clock.now)  # it grew between two scans
    clock.now += 0.5
    assert statuses(watch.step()) == [("waiting", "growing")]
    clock.now += SETTLE
    events = watch.step()
    assert statuses(events) == [("added", "growing")]
    expected = len(prepare(path, settings, embedder)[0].passages)
    put(path, half, clock.now)
    assert expected > len(prepare(path, settings, embedder)[0].passages)  # halves differ
    assert events[0].passages == expected


def test_a_bad_file_is_reported_once_and_tried_again_when_it_changes(
    settings: Settings, folder: Path
) -> None:
    clock = Clock()
    watch = watcher(settings, clock)
    put(folder / "scan.pdf", b"%PDF-1.4 not really a pdf", clock.now - 60)
    put(folder / "notes.docx", b"PK\x03\x04", clock.now - 60)
    events = watch.step()
    assert sorted(statuses(events)) == [("failed", "notes"), ("failed", "scan")]
    assert "unsupported type '.docx'" in events[0].line() + events[1].line()
    for _ in range(3):
        assert watch.step() == []
    put(folder / "notes.docx", b"PK\x03\x04 edited", clock.now - 60)
    assert watch.step() == []  # changed since the last scan: read at the next if it rests
    assert statuses(watch.step()) == [("failed", "notes")]  # tried again, reported again
    (folder / "scan.pdf").unlink()
    put(folder / "scan.txt", article(1), clock.now - 60)
    watch.step()
    assert statuses(watch.step()) == [("added", "scan")]


def test_temporaries_and_hidden_files_wait_for_their_rename(
    settings: Settings, folder: Path
) -> None:
    clock = Clock()
    watch = watcher(settings, clock)
    for name in ("story.txt.part", "story.pdf.crdownload", ".story.txt", "story.txt~"):
        put(folder / name, article(4), clock.now - 60)
    assert watch.step() == []
    os.replace(folder / "story.txt.part", folder / "story.txt")
    assert watch.step() == []
    assert statuses(watch.step()) == [("added", "story")]


# -- the command line, real embedder -------------------------------------------------------------
def start_watch(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """`python -m ingest --watch ARGS`, its output read line by line (_lines)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", "--watch", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in process.stdout or []:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _until(lines: queue.Queue[str], seen: list[str], text: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no line with {text!r} in {timeout:.0f} s; got:\n" + "\n".join(seen))
        seen.append(line)
        if text in line:
            return line


@pytest.mark.slow
def test_ingest_watch_prints_a_line_per_article_and_a_bad_file_once(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    env = {**os.environ, "INDEX_DIR": str(tmp_path / "index"), "HF_HUB_OFFLINE": "1"}
    process = start_watch([str(folder), "--settle", "0.5", "--interval", "0.2"], env)
    seen: list[str] = []
    try:
        lines = _lines(process)
        _until(lines, seen, "Watching")
        shutil.copy(CORPUS / f"{IDS[2]}.txt", folder / "first.txt.part")
        os.replace(folder / "first.txt.part", folder / "first.txt")  # lands whole
        assert "passages, from first.txt" in _until(lines, seen, "added    first")
        (folder / "broken.pdf").write_bytes(b"not a pdf")
        _until(lines, seen, "failed   broken.pdf")
        shutil.copy(CORPUS / f"{IDS[4]}.txt", folder / "second.txt")
        _until(lines, seen, "added    second")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert sum("broken.pdf" in line for line in seen) == 1, seen
    listed = subprocess.run(
        [sys.executable, "-m", "ingest", "--list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "first " in listed and "second " in listed and "2 articles" in listed


# -- the web UI with WATCH_DATA_DIR --------------------------------------------------------------
@pytest.fixture
def watching(tmp_path: Path, folder: Path) -> Iterator[Backend]:
    shutil.copy(CORPUS / f"{IDS[0]}.txt", folder)
    settings = make_settings(
        tmp_path, data_dir=folder, embedder="fake", llm_backend="fake", watch_data_dir=True
    )
    backend = Backend(settings, FakeChat(), FakeEmbedder())
    backend.prepare()
    yield backend
    backend.close()


def test_the_web_ui_indexes_what_lands_in_its_data_dir(watching: Backend, folder: Path) -> None:
    deps = watching.wait()
    assert watching.stage.startswith("1 articles")
    text = "The floating library of Hai Phong lends books to the fishermen of the bay.\n"
    put(folder / "library.md", text.encode(), time.time() - 60)
    deadline = time.monotonic() + 60
    while True:  # the watcher scans every second, the searcher checks for news every second
        hits, _ = deps.retriever.search("floating library fishermen books", 3)
        if hits and hits[0].doc_id == "library":
            break
        assert time.monotonic() < deadline, "the new file never became searchable"
        time.sleep(0.2)
    while not watching.stage.startswith("2 articles"):
        assert time.monotonic() < deadline, watching.stage
        time.sleep(0.2)
