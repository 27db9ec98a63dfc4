"""3b. News arriving: what adding or replacing one article costs at each index size, and how
soon a running replica (another process on the same Chroma server) finds it.

The article is a real one from the shipped corpus under a new id, with a sentence no other
passage holds; it goes through `ingest_paths` as a user's file would. Its own embedding is
measured apart (the same passages, warm model) and subtracted, as the goal excludes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eval.bench.common import CORPUS, ROOT

MARK = "Quasimodo"
_SENTENCE = "The {mark} ferry terminal number {n} opened on the Cam river in Hai Phong."

# A replica: holds the search state, says so, then searches until it finds the new article.
_REPLICA = """
import sys, time
from bot.deps import make_retriever
from bot.index.store import open_index
from bot.models.embeddings import make_embedder
from bot.settings import Settings

settings = Settings(_env_file=None)
embedder = make_embedder(settings)
retriever = make_retriever(settings, open_index(settings, embedder.name, embedder.dim), embedder)
retriever.state()
print("ready", flush=True)
word, deadline = sys.argv[1], time.monotonic() + 300
while time.monotonic() < deadline:
    hits, _ = retriever.search(word, 3)
    if any(word in h.text.lower() for h in hits):
        print(time.time(), flush=True)
        break
    time.sleep(0.02)  # the next search, as a busy replica's next question
else:
    print("nan", flush=True)
"""


def _article(folder: Path, name: str, n: int) -> Path:
    """The English corpus article under a new id, with a sentence that marks version `n`."""
    source = next(p for p in sorted(CORPUS.glob("*.txt")) if p.stem.startswith("002"))
    paragraphs = source.read_text(encoding="utf-8").split("\n\n")
    paragraphs.insert(3, _SENTENCE.format(mark=f"{MARK}{n}", n=n))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.txt"
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    return path


def _replica(env: dict[str, str], word: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", _REPLICA, word]
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    if (
        proc.stdout is None or proc.stdout.readline().strip() != "ready"
    ):  # blocks until the replica holds the state
        proc.kill()
        raise RuntimeError("the replica process did not start")
    return proc


def bench_updates(
    settings: Any, embedder: Any, work: Path, size: int, replica_env: dict[str, str] | None
) -> dict[str, Any]:
    """Add, then replace, one article; with `replica_env` (a Chroma server) a replica
    process waits for each version."""
    from ingest.pipeline import ingest_paths, prepare

    out: dict[str, Any] = {}
    folder = work / f"news{size}"
    for n, step in enumerate(("add", "replace")):
        path = _article(folder, f"zz_news_{size}", n)
        word = f"{MARK.lower()}{n}"
        replica = _replica({**os.environ, **replica_env}, word) if replica_env else None
        started = time.perf_counter()
        summary = ingest_paths([path], settings, embedder=embedder, progress=False)
        seconds, ended = time.perf_counter() - started, time.time()
        if summary.counts["added" if step == "add" else "updated"] != 1:
            raise RuntimeError(f"the article was not ingested: {summary.report()}")
        prepared, _ = prepare(path, settings, embedder)
        t0 = time.perf_counter()
        embedder.embed_passages([p.text for p in prepared.passages])
        embed_s = time.perf_counter() - t0
        out[step] = {
            "total_s": seconds,
            "embed_s": embed_s,
            "without_embedding_s": max(seconds - embed_s, 0.0),
            "passages": len(prepared.passages),
        }
        if replica is not None and replica.stdout is not None:
            seen = float(replica.stdout.readline())
            replica.wait(timeout=60)
            out[step]["replica_sees_s"] = seen - ended
    return out


def line(mode: str, size: int, r: dict[str, Any]) -> str:
    parts = []
    for step in ("add", "replace"):
        s = r[step]
        seen = (
            f", a replica finds it {s['replica_sees_s']:.2f} s after"
            if "replica_sees_s" in s
            else ""
        )
        parts.append(
            f"{step} one article ({s['passages']} passages) {s['without_embedding_s']:.2f} s "
            f"without its embedding ({s['embed_s']:.1f} s){seen}"
        )
    return f"  {mode:<8} {size:>7} passages: " + "; ".join(parts)
