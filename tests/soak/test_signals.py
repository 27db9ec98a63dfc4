"""Stopped as `kill`, systemd or docker stop them (SIGTERM), the commands that start the
embedded LLM server stop it too: it runs in a session of its own and would outlive them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.net import pid_alive
from tests.conftest import CORPUS, ROOT, own_model_dir

pytestmark = pytest.mark.slow  # processes signalled

QUESTION = {
    "id": "s1",
    "question": "Who is the Chairman of the Hai Phong People's Committee?",
    "lang": "en",
    "answerable": False,
    "expected_docs": [],
    "gold": [],
    "facts": [],
}


@pytest.mark.parametrize("command", [["eval"], ["eval.latency"]])
def test_sigterm_stops_the_embedded_llm_server_it_started(
    tmp_path: Path, command: list[str]
) -> None:
    model_dir = own_model_dir(tmp_path)
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps(QUESTION) + "\n")
    args = ["--questions", str(questions)]
    if command == ["eval"]:
        args += ["--out", str(tmp_path / "run"), "--quiet"]
    env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "EMBEDDER": "fake",
        "LLM_BACKEND": "local",
        "INDEX_DIR": str(tmp_path / "index"),
        "DATA_DIR": str(CORPUS),
    }
    subprocess.run(
        [sys.executable, "-m", "ingest", "--quiet"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *command, *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    state = model_dir / "server.json"
    try:
        deadline = time.monotonic() + 300
        while not state.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state.exists(), log.read_text(errors="replace")[-2000:]
        server = json.loads(state.read_text())["pid"]
        assert process.poll() is None, "the run ended before it could be stopped"
        process.send_signal(signal.SIGTERM)  # while the server reads its first question
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    deadline = time.monotonic() + 30
    while pid_alive(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = pid_alive(server)
    if alive:
        os.kill(server, signal.SIGKILL)
    assert not alive, f"the LLM server outlived `python -m {command[0]}` stopped with SIGTERM"
