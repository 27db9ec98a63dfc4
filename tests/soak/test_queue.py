"""The real embedded LLM behind the app: it answers one question at a time, so others wait in
a queue that tells each its position; when its server is killed mid-answer, that answer fails
with a clear error and the app starts the server again for the next one, and stops it when
the app is stopped. A few minutes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from gradio_client.utils import Status

from bot.net import pid_alive
from bot.settings import Settings
from tests.conftest import start_app, stop_app
from tests.soak.conftest import REPORT

pytestmark = pytest.mark.slow  # the real LLM, the app

QUESTIONS = [
    "Who is the Chairman of the Hai Phong People's Committee?",
    "Which festival is Hai Phong organizing in 2025?",
    "What is the date of Government Resolution No. 7/NQ-CP?",
]
UNSEEN = "Quels sont les objectifs de Hai Phong pour 2030 ?"  # asked nowhere else in this test


def _watch(jobs: list[Any], until: float) -> dict[int, set[int]]:
    """Queue positions each job was told while it waited."""
    seen: dict[int, set[int]] = {i: set() for i in range(len(jobs))}
    while not all(job.done() for job in jobs) and time.monotonic() < until:
        for i, job in enumerate(jobs):
            status = job.status()
            if status.code == Status.IN_QUEUE and status.rank is not None:
                seen[i].add(status.rank)
        time.sleep(0.2)
    return seen


def _asked(log: Path) -> int:
    """How many times the app has sent a question to its LLM (its log says so each time)."""
    return log.read_text(errors="replace").count("asking the embedded LLM server")


def _server_pid(model_dir: Path) -> int:
    return int(json.loads((model_dir / "server.json").read_text())["pid"])


def test_real_llm_questions_queue_with_their_position_and_survive_a_killed_server(
    tmp_path: Path,
) -> None:
    model_dir = Settings(_env_file=None).model_dir  # where the GGUF is already assembled
    # passage mode: in article mode a question about an article read earlier (MODEL_DIR keeps
    # it) starts in seconds, so the kill below could land after the first words (then /ask
    # returns them with the error instead of failing)
    process, app = start_app(
        tmp_path,
        LLM_BACKEND="local",
        WARM_ARTICLES="false",
        ANSWER_MODE="passages",
        LLM_MAX_TOKENS="48",  # the queue is under test, not the answers: short ones will do
    )
    try:
        client = Client(app.url, verbose=False)
        started = time.monotonic()
        jobs = [client.submit(question=q, api_name="/ask") for q in QUESTIONS]
        positions = _watch(jobs, started + 900)
        results = [job.result(timeout=60) for job in jobs]
        assert all(not r["error"] and r["passages"] for r in results), results
        assert any(ranks - {0} for ranks in positions.values()), positions  # someone waited
        REPORT["real_llm_queue"] = {
            "questions_at_once": len(jobs),
            "errors": 0,
            "positions_shown": {
                QUESTIONS[i][:40]: sorted(r + 1 for r in ranks) for i, ranks in positions.items()
            },
            "all_answered_s": round(time.monotonic() - started),
        }

        # kill the llama.cpp server once the app has asked it a question it has not seen: its
        # sources (~600 tokens not in its prompt cache) alone take it over 10 s to read
        asked = _asked(app.log)
        victim = client.submit(question=UNSEEN, api_name="/ask")
        deadline = time.monotonic() + 120
        while _asked(app.log) == asked and not victim.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not victim.done(), "answered before the LLM was asked"
        killed = _server_pid(model_dir)
        os.kill(killed, signal.SIGKILL)
        try:
            failed: Any = victim.result(timeout=300)
        except Exception as exc:
            failed = exc
        said = str(failed)  # the process was killed: the reader is told so, and what follows
        assert isinstance(failed, Exception) and "(signal 9: SIGKILL" in said, failed
        assert "started again for the next question" in said, said
        restarted = time.monotonic()
        after = client.predict(question=QUESTIONS[1], api_name="/ask")
        assert not after["error"] and after["answer"] and _server_pid(model_dir) != killed
        REPORT.setdefault("faults", {})["embedded LLM server killed mid-answer"] = {
            "survived": True,
            "error_shown": str(failed)[:120],
            "next_answer_s": round(time.monotonic() - restarted),
        }
    finally:
        stop_app(process)
    # stopped as systemd or docker stop it (SIGTERM), the app stops the server it restarted
    restarted_pid, deadline = _server_pid(model_dir), time.monotonic() + 30
    while pid_alive(restarted_pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not pid_alive(restarted_pid), "the embedded LLM server outlived the app"
