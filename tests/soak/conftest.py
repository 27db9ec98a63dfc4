"""The reliability group (`make reliability`, marker `reliability`; the costly ones are `slow`
too): hostile content, bad input, faults, load and security defaults, each against the running
app or the real index.

Every test adds its figures to REPORT; the run writes them to .soak/report.json and prints
them at the end (docs/reliability.md quotes a run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.net import NotServing, free_port, wait_until_serving
from tests.conftest import ROOT

REPORT: dict[str, Any] = {}
HOSTILE = Path(__file__).parent / "hostile"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT:
        return
    out = ROOT / ".soak"
    out.mkdir(exist_ok=True)
    (out / "report.json").write_text(json.dumps(REPORT, indent=2, ensure_ascii=False))
    terminalreporter.section("soak figures (.soak/report.json)")
    for name, figures in sorted(REPORT.items()):
        terminalreporter.write_line(f"{name}: {json.dumps(figures, ensure_ascii=False)}")


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    try:
        wait_until_serving(url, proc, seconds, 0.2)
    except NotServing:
        proc.kill()
        raise RuntimeError(log.read_text(errors="replace")[-2000:]) from None


class Process:
    """A server the test starts, kills (SIGKILL, as a crash would) and starts again on the
    same port."""

    def __init__(self, args: list[str], port: int, probe: str, log: Path) -> None:
        self.args, self.port, self.probe, self.log = args, port, probe, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
            )
        _wait_for(f"http://127.0.0.1:{self.port}{self.probe}", self.proc, self.log)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def chroma_process(data: Path, log: Path) -> Process:
    port = free_port()
    chroma = str(Path(sys.executable).with_name("chroma"))
    args = [chroma, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)]
    return Process(args, port, "/api/v2/heartbeat", log)


def fake_llm_process(log: Path, *options: str) -> Process:
    port = free_port()
    args = [sys.executable, "-m", "tests.fake_openai", str(port), *options]
    return Process(args, port, "/v1/models", log)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Servers a test starts; all killed at its end."""
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()
