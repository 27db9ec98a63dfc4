"""What the benchmarks share: where the corpus and the dev questions are, printing, timing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.net import NotServing, free_port, wait_until_serving
from eval.metrics import percentile
from eval.questions import load_questions

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "data" / "articles"
DEV = ROOT / "eval" / "questions" / "dev.jsonl"


def say(text: str) -> None:
    print(text, flush=True)


def dev_questions() -> list[str]:
    return [q.question for q in load_questions(DEV)]


def corpus_passages(settings: Any, embedder: Any) -> list[tuple[str, str]]:
    """(lang, text) of every passage the pipeline makes from the shipped corpus."""
    from ingest.pipeline import prepare
    from ingest.readers import find_files

    out: list[tuple[str, str]] = []
    for path in find_files([CORPUS]):
        prepared, _ = prepare(path, settings, embedder)
        out.extend((prepared.meta.lang, p.text) for p in prepared.passages)
    return out


def best_rate(fn: Callable[[], object], n: int, repeat: int = 2) -> tuple[float, float]:
    """Items per second and seconds, of the best of `repeat` runs (the others met noise)."""
    seconds = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        seconds = min(seconds, time.perf_counter() - started)
    return n / seconds, seconds


def ms(values: list[float], q: float) -> float:
    return 1000 * (percentile(values, q) or 0.0)


@contextmanager
def chroma_server(path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A Chroma server on a free port of 127.0.0.1 storing in `path`: its process and port;
    stopped and its data deleted afterwards."""
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc, 60)
        yield proc, port
    except NotServing as exc:
        raise RuntimeError(f"the Chroma server did not start ({exc})") from None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=60)
        shutil.rmtree(path, ignore_errors=True)
