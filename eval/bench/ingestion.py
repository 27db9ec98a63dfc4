"""2. Ingestion of the shipped corpus against the raw embedder, with a profile of its stages."""

from __future__ import annotations

import importlib
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eval.bench.common import CORPUS, best_rate, say


@contextmanager
def _timed(owner: Any, name: str, spent: dict[str, float]) -> Iterator[None]:
    """Add the seconds spent in `owner.name` (a module's function or an object's method) to
    `spent[name]` while the block runs."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def bench_ingestion(
    settings: Any, embedder: Any, texts: list[str], work: Path, copies: int = 5
) -> dict[str, Any]:
    """The corpus ingested `copies` times over (as other article ids), warm: model, Thai
    dictionary, stop words, language identifier and chromadb loaded first, as in a
    long-running process (a watcher, the web UI)."""
    from bot.index.lexical import tokenize
    from bot.index.state_writer import StateWriter
    from bot.text.language import detect_language
    from ingest import pipeline

    folder = work / "copies"
    folder.mkdir()
    for n in range(copies):
        for path in sorted(CORPUS.glob("*.txt")):
            shutil.copy(path, folder / f"{path.stem}_copy{n}{path.suffix}")
    texts = texts * copies
    embedder.embed_passages(texts[:2])
    tokenize("ไฮฟอง Hải Phòng the der")
    detect_language("Hai Phong opens a port")  # its model, as a running watcher holds it
    importlib.import_module("chromadb")
    raw_rate, raw_s = best_rate(lambda: embedder.embed_passages(texts), len(texts), repeat=1)
    spent: dict[str, float] = {}
    with (
        _timed(embedder, "embed_passages", spent),
        _timed(pipeline, "prepare", spent),
        _timed(StateWriter, "begin", spent),
        _timed(StateWriter, "publish", spent),
        _timed(StateWriter, "compact", spent),
    ):
        started = time.perf_counter()
        summary = pipeline.ingest_paths([folder], settings, embedder=embedder, progress=False)
        total = time.perf_counter() - started
    passages = summary.written
    rate = passages / total
    other = total - sum(spent.values())
    result: dict[str, Any] = {
        "passages": passages,
        "seconds": total,
        "per_s": rate,
        "raw_embedder_per_s": raw_rate,
        "overhead": total / raw_s - 1,
        "profile_s": {
            "read_clean_chunk": spent.get("prepare", 0.0),
            "embed": spent.get("embed_passages", 0.0),
            "search_state": sum(spent.get(k, 0.0) for k in ("begin", "publish", "compact")),
            "chroma_writes_and_rest": other,
        },
    }
    say(
        f"ingestion (shipped corpus x{copies}, empty index, warm model): {passages} passages in "
        f"{total:.1f} s "
        f"= {rate:.2f}/s; raw embedder on the same passages {raw_rate:.2f}/s; overhead "
        f"{100 * result['overhead']:.0f}%\n  profile: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in result["profile_s"].items())
    )
    return result
