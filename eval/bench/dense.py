"""3c. Dense search through Chroma's per-language vector index at sizes where filling a whole
index takes too long here (1M passages: ~1 h 20 min of text, postings and vectors at 207/s):
only the per-language vector collections are filled, on a Chroma server, with the synthetic
passages' vectors, and searched as the retriever searches them (bot.index.dense), against
exact search over the same vectors held in this process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench.common import dev_questions, ms, say
from eval.bench.synthetic import Synthetic


def _ranked(scored: list[tuple[float, str]], k: int) -> list[str]:
    return [pid for _, pid in sorted(scored, key=lambda t: -t[0])][:k]


def bench_dense(
    embedder: Any,
    synthetic: Synthetic,
    size: int,
    port: int,
    rounds: int,
    k: int = 10,
    candidates: int = 30,
) -> dict[str, Any]:
    from bot.index.dense import DenseIndex
    from bot.index.segments import Moments
    from bot.index.store import open_index
    from bot.settings import Settings

    settings = Settings(_env_file=None, chroma_host="127.0.0.1", chroma_port=port)
    dense = DenseIndex(open_index(settings, embedder.name, embedder.dim))
    held: dict[str, list[np.ndarray]] = {}
    ids: dict[str, list[str]] = {}
    moments, started = Moments(), time.perf_counter()
    for start in range(0, size, 5000):
        _, vectors, metas = synthetic.batch(start, min(5000, size - start))
        langs = np.array([m["lang"] for m in metas], dtype=str)
        pids = [f"{m['doc_id']}:v1:{m['chunk_index']:04d}" for m in metas]
        dense.write(pids, langs, vectors, metas)
        moments = moments + Moments.of(langs, vectors)
        for lang in set(langs.tolist()):
            held.setdefault(lang, []).append(vectors[langs == lang])
            ids.setdefault(lang, []).extend(
                p for p, x in zip(pids, langs, strict=True) if x == lang
            )
    fill_s = time.perf_counter() - started
    matrices = {lang: np.concatenate(parts) for lang, parts in held.items()}
    stats = moments.stats()
    times: dict[str, list[float]] = {"exact": [], "chroma": []}
    recall = []
    for question in dev_questions() * rounds:
        query = embedder.embed_query(question)
        q64 = query.astype(np.float64)
        t0 = time.perf_counter()
        exact: list[tuple[float, str]] = []
        for lang, matrix in matrices.items():
            sims = matrix @ query
            top = np.argpartition(-sims, candidates - 1)[:candidates]
            z = stats[lang].zscore(q64, sims[top].astype(np.float64))
            exact += [(float(s), ids[lang][n]) for s, n in zip(z, top, strict=True)]
        t1 = time.perf_counter()
        approx: list[tuple[float, str]] = []
        for lang in matrices:
            got, sims = dense.nearest(lang, query, candidates, None)
            z = stats[lang].zscore(q64, sims)
            approx += [(float(s), pid) for s, pid in zip(z, got, strict=True)]
        t2 = time.perf_counter()
        times["exact"].append(t1 - t0)
        times["chroma"].append(t2 - t1)
        want = set(_ranked(exact, k))
        recall.append(len(want & set(_ranked(approx, k))) / k)
    return {
        "passages": size,
        "fill_s": fill_s,
        "held_mb": sum(m.nbytes for m in matrices.values()) / 1e6,
        f"recall_at_{k}": float(np.mean(recall)),
        "recall_min": float(np.min(recall)),
        **{f"{name}_ms": {"p50": ms(v, 0.5), "p95": ms(v, 0.95)} for name, v in times.items()},
    }


def line(r: dict[str, Any]) -> str:
    return (
        f"  dense only {r['passages']:>8} passages (per-language collections on a Chroma "
        f"server, filled in {r['fill_s']:.0f} s): recall@10 against exact {r['recall_at_10']:.3f} "
        f"(lowest {r['recall_min']:.1f}); ms p50/p95 without the query's embedding: through "
        f"Chroma {r['chroma_ms']['p50']:.1f}/{r['chroma_ms']['p95']:.1f}, exact over "
        f"{r['held_mb']:.0f} MB held {r['exact_ms']['p50']:.1f}/{r['exact_ms']['p95']:.1f}"
    )


def run(
    embedder: Any, synthetic: Synthetic, sizes: list[int], rounds: int, work: Path
) -> dict[int, dict[str, Any]]:
    from eval.bench.common import chroma_server
    from eval.latency import peak_rss_mb

    out: dict[int, dict[str, Any]] = {}
    for size in sizes:
        with chroma_server(work / f"dense{size}") as (proc, port):
            result = bench_dense(embedder, synthetic, size, port, rounds)
            result["chroma_server_peak_mb"] = peak_rss_mb(proc.pid) or 0.0
        out[size] = result
        say(line(result) + f"; Chroma server peak {result['chroma_server_peak_mb']:.0f} MB")
    return out
