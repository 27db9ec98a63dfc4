"""What the benchmarks share: where the corpus and the dev questions are, printing, timing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
