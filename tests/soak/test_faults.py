"""Faults: the LLM server killed mid-stream or slow, the Chroma server down at start and
mid-session, the index directory read-only, the disk full during ingestion."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from playwright.sync_api import Browser, expect

from bot.index.store import open_index
from bot.models.embeddings import FakeEmbedder
from bot.settings import Settings
from tests.conftest import CORPUS, ROOT, start_app, stop_app
from tests.soak.conftest import REPORT, Process, chroma_process, fake_llm_process
from tests.test_browser import READY, TIMEOUT_MS, browser  # noqa: F401  (the Chromium fixture)

pytestmark = pytest.mark.slow  # servers and processes killed

REPLY = "Hai Phong is a port city [1]. " + "Its port handles more ships every year [1]. " * 12


def _survived(name: str, **figures: Any) -> None:
    REPORT.setdefault("faults", {})[name] = {"survived": True, **figures}


def _ask(client: Client, question: str = "Who leads Hai Phong?") -> Any:
    try:
        return client.predict(question=question, api_name="/ask")
    except Exception as exc:
        return exc


def _until(check: Callable[[], Any], seconds: float) -> Any:
    """The first truthy result of check() within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(1)


# -- the LLM -------------------------------------------------------------------------------------
def test_llm_killed_mid_stream_then_slow_the_app_serves_on(
    browser: Browser,  # noqa: F811
    tmp_path: Path,
    processes: list[Process],
) -> None:
    llm = fake_llm_process(tmp_path / "llm.log", "--chunk-delay", "0.25", "--reply", REPLY)
    processes.append(llm.start())
    process, app = start_app(
        tmp_path,
        LLM_BACKEND="openai",
        LLM_BASE_URL=f"http://127.0.0.1:{llm.port}/v1",
        LLM_TIMEOUT="3",
    )
    try:
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(app.url)
        expect(page.locator("#status")).to_contain_text(READY, timeout=TIMEOUT_MS)
        bot = page.locator("#chat .bot").last
        page.locator("#question textarea").fill("Is Hai Phong a port city?")
        page.locator("#ask").click()
        expect(bot).to_contain_text("Its port handles")  # streaming has begun
        llm.kill()
        expect(bot).to_contain_text("stopped answering")
        shown = bot.inner_text()
        assert shown.startswith("Hai Phong is a port city") and "⚠️" in shown, shown
        _survived("LLM killed mid-stream", partial_chars_kept=len(shown.split("⚠️")[0].strip()))

        # the same server back, but slow: the timeout applies and says which setting it is
        llm.args += ["--delay", "6"]
        llm.start()
        client = Client(app.url, verbose=False)
        slow = _ask(client)
        assert isinstance(slow, Exception) and "LLM_TIMEOUT" in str(slow), slow
        _survived("LLM slower than LLM_TIMEOUT", timeout_s=3)

        llm.kill()
        llm.args = llm.args[:-2]
        llm.start()
        again = _ask(client)
        assert isinstance(again, dict) and again["answer"].startswith("Hai Phong is a port city")
        page.close()
    finally:
        stop_app(process)


# -- the Chroma server ---------------------------------------------------------------------------
def test_chroma_server_down_at_start_and_mid_session(
    tmp_path: Path, processes: list[Process]
) -> None:
    chroma = chroma_process(tmp_path / "chroma-data", tmp_path / "chroma.log")
    processes.append(chroma)
    process, app = start_app(
        tmp_path,
        CHROMA_HOST="127.0.0.1",
        CHROMA_PORT=str(chroma.port),
        INDEX_DIR=str(tmp_path / "must-stay-empty"),
    )
    try:
        client = Client(app.url, verbose=False)
        down = _ask(client)
        assert isinstance(down, Exception) and "Cannot reach the Chroma server" in str(down)
        assert "CHROMA_HOST" in str(down) and "Traceback" not in str(down)

        chroma.start()
        started = time.monotonic()
        up = _until(lambda: isinstance(r := _ask(client), dict) and r, 240)
        assert up and up["passages"], "the app did not recover when the server came up"
        _survived("Chroma down at start", recovered_after_s=round(time.monotonic() - started))

        chroma.kill()
        mid = _ask(client)
        assert isinstance(mid, Exception) and "Cannot reach the Chroma server" in str(mid), mid
        chroma.start()
        back = _until(lambda: isinstance(r := _ask(client), dict) and r, 60)
        assert back and back["passages"] == up["passages"]
        _survived("Chroma down mid-session")
    finally:
        stop_app(process)
    assert "Traceback" not in app.log.read_text(errors="replace")


# -- the embedded index's disk -------------------------------------------------------------------
def _snapshot(index_dir: Path) -> dict[str, Any]:
    settings = Settings(_env_file=None, index_dir=index_dir, embedder="fake")
    index = open_index(settings, FakeEmbedder.name, FakeEmbedder.dim)
    got = index.passages.get(include=["documents"])
    committed = {k: v for k, v in index.articles().items() if not v.get("pending")}
    return {
        "passages": dict(zip(got["ids"], got["documents"] or [], strict=True)),
        "articles": committed,
    }


def _ingest(
    index_dir: Path, *args: str, env: dict[str, str] | None = None, wrap: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [*(wrap or []), sys.executable, "-m", "ingest", "--quiet", *args]
    values = {**os.environ, "EMBEDDER": "fake", "INDEX_DIR": str(index_dir), **(env or {})}
    return subprocess.run(
        command, cwd=ROOT, env=values, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def small_index(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """The shipped corpus indexed, a new 20-passage article beside it, and the index's state."""
    index = tmp_path / "index"
    assert _ingest(index, str(CORPUS)).returncode == 0
    extra = tmp_path / "extra"
    extra.mkdir()
    paragraphs = [
        f"Paragraph {i} on the Cam river bridge of Hai Phong, which opens next year "
        f"with {i * 40} metres of deck and lanes for trucks to the port. " * 6
        for i in range(20)
    ]
    (extra / "zz_bridge.txt").write_text("Hai Phong's new bridge\n\n" + "\n\n".join(paragraphs))
    return index, extra, _snapshot(index)


def _namespace(script: str) -> list[str]:
    """Run in a private mount namespace (root inside it, no effect outside)."""
    if shutil.which("unshare") is None:
        pytest.fail("these tests need util-linux's unshare to mount a read-only or full disk")
    return ["unshare", "-rm", "sh", "-ec", script, "sh"]


def test_a_read_only_index_is_a_clear_error_and_stays_intact(
    small_index: tuple[Path, Path, dict[str, Any]],
) -> None:
    index, extra, before = small_index
    mount = f'mount --bind {index} {index}; mount -o remount,bind,ro {index}; exec "$@"'
    done = _ingest(index, str(extra), wrap=_namespace(mount))
    assert done.returncode == 2, done.stderr
    assert "read-only" in done.stderr and "INDEX_DIR" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert _snapshot(index) == before
    _survived("index directory read-only", data_lost=0)


@pytest.mark.parametrize("headroom_kb", [48, 200])
def test_a_full_disk_during_ingestion_is_a_clear_error_and_loses_nothing(
    small_index: tuple[Path, Path, dict[str, Any]], tmp_path: Path, headroom_kb: int
) -> None:
    index, extra, before = small_index
    # what the copy takes on a tmpfs: whole 4 KB pages per file (the index is many small files)
    used_kb = sum(-(-f.stat().st_size // 4096) * 4 for f in index.rglob("*") if f.is_file())
    disk, after = tmp_path / "disk", tmp_path / "after"
    disk.mkdir()
    # a tmpfs just larger than the index, ingestion into it, then the index copied back out
    script = "; ".join(
        [
            f"mount -t tmpfs -o size={used_kb + headroom_kb}k tmpfs {disk}",
            f"cp -a {index} {disk}/index",
            "code=0",
            f'INDEX_DIR={disk}/index "$@" 2> {tmp_path}/stderr || code=$?',
            f"cp -a {disk}/index {after}",
            "exit $code",
        ]
    )
    # first with the default INDEX_MIN_FREE_MB: stopped before writing
    done = _ingest(index, str(extra), wrap=_namespace(script))
    assert (tmp_path / "stderr").exists(), f"the index did not fit the disk: {done.stderr}"
    stderr = (tmp_path / "stderr").read_text()
    assert done.returncode == 2 and "nearly full" in stderr and "INDEX_MIN_FREE_MB" in stderr
    assert _snapshot(after) == before
    shutil.rmtree(after)
    # then with the check off, so that the disk fills in the middle of Chroma's writes
    done = _ingest(index, str(extra), env={"INDEX_MIN_FREE_MB": "0"}, wrap=_namespace(script))
    stderr = (tmp_path / "stderr").read_text()
    assert done.returncode == 2, stderr
    assert "disk of the index" in stderr and "is full" in stderr, stderr
    assert "nearly full" not in stderr and "Traceback" not in stderr
    kept = _snapshot(after)
    lost = [i for i, text in before["passages"].items() if kept["passages"].get(i) != text]
    assert lost == [] and {k: kept["articles"][k] for k in before["articles"]} == before["articles"]
    # with space again, the next run repairs what was cut short and adds the article
    rerun = _ingest(after, str(extra))
    assert rerun.returncode == 0 and ("1 added" in rerun.stdout or "1 unchanged" in rerun.stdout)
    check = _ingest(after, "--check")
    assert "index is consistent" in check.stdout, check.stdout
    _survived(f"disk full during ingestion ({headroom_kb} KB free)", data_lost=len(lost))
