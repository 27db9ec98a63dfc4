"""`python app.py` (what `make run` calls) brings the index up to date before serving."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_app_ingests_when_the_index_is_missing_then_skips(tmp_path: Path) -> None:
    env = {**os.environ, "INDEX_DIR": str(tmp_path / "index"), "EMBEDDER": "fake"}
    run = [sys.executable, "app.py"]
    first = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "5 added" in first.stdout and "index is ready" in first.stdout.lower()
    second = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "5 unchanged" in second.stdout and "nothing written" in second.stdout


def test_app_fails_clearly_when_no_article_can_be_ingested(tmp_path: Path) -> None:
    data = tmp_path / "articles"
    data.mkdir()
    (data / "empty.txt").write_bytes(b"")
    env = {**os.environ, "INDEX_DIR": str(tmp_path / "index"), "DATA_DIR": str(data)}
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1
    assert "empty.txt: empty file" in done.stdout
    assert "could be ingested" in done.stderr and "Traceback" not in done.stderr
