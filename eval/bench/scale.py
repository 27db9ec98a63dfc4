"""3. Retrieval latency at scale, on embedded Chroma and on a Chroma server, and the web UI's
memory on that server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bot.net import free_port, wait_until_serving
from eval.bench.common import ROOT, chroma_server, dev_questions, ms, say
from eval.bench.synthetic import Synthetic, fill, sentences
from eval.bench.updates import bench_updates
from eval.bench.updates import line as updates_line
from eval.latency import peak_rss_mb, status_mb
from eval.metrics import percentile

REBUILD_MAX = 100_000  # sizes up to which the state is also built from scratch once (timed)


def bench_retrieval(index: Any, embedder: Any, rounds: int) -> dict[str, Any]:
    """Search latency both ways dense search runs (every vector held in this process, exact;
    Chroma's per-language vector index, approximate) and how often they agree."""
    from bot.index import state_store
    from bot.index.state_writer import StateWriter
    from bot.retrieval.retriever import Retriever

    state_s = None
    if index.count() <= REBUILD_MAX:  # as for an index from before the state: minutes at 1M
        started = time.perf_counter()
        with StateWriter(index) as writer:
            writer.rebuild()
        state_s = time.perf_counter() - started
    # the held side holds every vector at any size (above DENSE_MEMORY_MAX only a bench does)
    retriever = Retriever(index, embedder, memory_max=index.count() + 1)
    chroma = Retriever(index, embedder, memory_max=0)
    started = time.perf_counter()
    state = retriever.state()
    load_s = time.perf_counter() - started
    for warm in (retriever, chroma):  # Chroma loads a collection's vector index when first asked
        warm.search(dev_questions()[0], 5)
    times: dict[str, list[float]] = {}
    recall, overlap = [], []
    for _ in range(rounds):
        for question in dev_questions():
            r, o = _time_question(question, retriever, chroma, times)
            recall.append(r)
            overlap.append(o)
    return {
        "passages": len(state.ids),
        "state_build_s": state_s,
        "state_load_s": load_s,
        "state_mb": state_store.stored_bytes(index) / 1e6,
        "dense_recall_at_10": float(np.mean(recall)),
        "fused_overlap_at_10": float(np.mean(overlap)),
        **{f"{k}_ms": {"p50": ms(v, 0.5), "p95": ms(v, 0.95)} for k, v in times.items()},
    }


def _time_question(
    q: str, held: Any, chroma: Any, times: dict[str, list[float]]
) -> tuple[float, float]:
    """Time each part of one question's search both ways (into `times`; dense times include
    the query's embedding); the share of the exact dense top 10 that Chroma's index finds,
    and of the fused top 10 that search through it returns."""
    from bot.index import state_store
    from bot.retrieval.records import Filters
    from bot.retrieval.retriever import _allowed

    state, lean, none = held.state(), chroma.state(), Filters()
    t0 = time.perf_counter()
    vector = held.embedder.embed_query(q)
    t1 = time.perf_counter()
    exact = held._dense(vector, none, state, _allowed(state, none))
    t2 = time.perf_counter()
    scores = state.scores(q)
    np.argpartition(-scores, min(30, len(scores) - 1))[:30]
    t3 = time.perf_counter()
    hits, _ = held.search(q, 10)
    t4 = time.perf_counter()
    state_store.read_manifest(held.index)
    t5 = time.perf_counter()
    approx = chroma._dense_chroma(chroma.embedder.embed_query(q), none, lean, _allowed(lean, none))
    t6 = time.perf_counter()
    lean_hits, _ = chroma.search(q, 10)
    t7 = time.perf_counter()
    for name, seconds in (
        ("embed", t1 - t0),
        ("dense", t2 - t0),
        ("lexical", t3 - t2),
        ("fused", t4 - t3),
        ("state_check", t5 - t4),
        ("dense_chroma", t6 - t5),
        ("fused_chroma", t7 - t6),
    ):
        times.setdefault(name, []).append(seconds)
    top = {str(state.ids[p]) for p in exact[:10]}
    ours = {h.id for h in hits}
    return (
        len(top & {str(lean.ids[p]) for p in approx[:10]}) / max(len(top), 1),
        len(ours & {h.id for h in lean_hits}) / max(len(ours), 1),
    )


def _line(mode: str, r: dict[str, Any], fill_s: float) -> str:
    def pair(name: str) -> str:
        return f"{r[name + '_ms']['p50']:.1f}/{r[name + '_ms']['p95']:.1f}"

    built = "" if r["state_build_s"] is None else f"built from scratch {r['state_build_s']:.1f} s, "
    return (
        f"  {mode:<8} {r['passages']:>7} passages: written {fill_s:.0f} s "
        f"({r['passages'] / max(fill_s, 1e-9):.0f}/s) in batches with their segments; "
        f"search state {r['state_mb']:.1f} MB, {built}loaded {r['state_load_s']:.2f} s; "
        f"ms p50/p95: dense held {pair('dense')} (query embedding {pair('embed')}), "
        f"dense through Chroma {pair('dense_chroma')}, lexical {pair('lexical')}, "
        f"fused held {pair('fused')}, fused through Chroma {pair('fused_chroma')}, "
        f"state check {pair('state_check')}; through Chroma against exact: dense "
        f"recall@10 {r['dense_recall_at_10']:.3f}, fused top-10 overlap "
        f"{r['fused_overlap_at_10']:.3f}"
    )


def bench_scale(
    embedder: Any,
    passages: list[tuple[str, str]],
    sizes: list[int],
    server_sizes: list[int],
    rounds: int,
    work: Path,
    dense_sizes: list[int] | None = None,
) -> dict[str, Any]:
    from bot.index.store import open_index
    from bot.settings import Settings

    synthetic = Synthetic(sentences(passages), embedder)
    counts = {k: len(v) for k, v in synthetic.sentences.items()}
    say(
        "retrieval (synthetic passages of 3-8 corpus sentences; their vectors are sums of the "
        f"sentences' real vectors plus noise, not embedded one by one; sentences per language: "
        f"{counts}; {len(dev_questions())} dev questions x {rounds} rounds)"
    )
    out: dict[str, Any] = {"embedded": {}, "server": {}, "vectors": "sums of real sentence vectors"}
    for size in sizes:
        settings = Settings(_env_file=None, index_dir=work / f"emb{size}")
        index = open_index(settings, embedder.name, embedder.dim)
        written = fill(index, synthetic, size)
        result = {"fill_s": written, **bench_retrieval(index, embedder, rounds)}
        result["process_peak_mb"] = peak_rss_mb(os.getpid())
        result["updates"] = bench_updates(settings, embedder, work, size, None)
        out["embedded"][size] = result
        say(_line("embedded", result, written))
        say(updates_line("embedded", size, result["updates"]))
        shutil.rmtree(work / f"emb{size}", ignore_errors=True)
    for size in server_sizes:
        out["server"][size] = _on_server(
            embedder, synthetic, size, rounds, work, ui=size == max(server_sizes) or size >= 100_000
        )
    if dense_sizes:
        from eval.bench import dense

        out["dense_only"] = dense.run(embedder, synthetic, dense_sizes, rounds, work)
    return out


def _on_server(
    embedder: Any, synthetic: Synthetic, size: int, rounds: int, work: Path, ui: bool
) -> dict[str, Any]:
    from bot.index.store import open_index
    from bot.settings import Settings

    with chroma_server(work / f"srv{size}") as (proc, port):
        settings = Settings(_env_file=None, chroma_host="127.0.0.1", chroma_port=port)
        index = open_index(settings, embedder.name, embedder.dim)
        written = fill(index, synthetic, size)
        say(f"  server   {size:>7} passages written in {written:.0f} s")
        result = {"fill_s": written, **bench_retrieval(index, embedder, rounds)}
        say(_line("server", result, written))
        env = {
            "CHROMA_HOST": "127.0.0.1",
            "CHROMA_PORT": str(port),
            "POSTINGS_DIR": str(work / "postings"),
        }
        result["updates"] = bench_updates(settings, embedder, work, size, env)
        say(updates_line("server", size, result["updates"]))
        # through Chroma twice (the first process on this machine copies the large parts'
        # postings to POSTINGS_DIR, the next maps them), then holding the vectors
        for name, memory_max in (
            (("ui_chroma", 0), ("ui_chroma_again", 0), ("ui_held", size * 2)) if ui else ()
        ):
            figures = bench_ui(port, work, memory_max)
            result[name] = figures
            say(_ui_line(size, name, figures))
        result["chroma_server_peak_mb"] = peak_rss_mb(proc.pid) or 0.0
        say(f"  Chroma server peak {result['chroma_server_peak_mb']:.0f} MB")
        return result


def _ui_line(size: int, name: str, figures: dict[str, Any]) -> str:
    how = {
        "ui_chroma": "through Chroma, first process on this machine",
        "ui_chroma_again": "through Chroma, postings mapped from the first's copy",
        "ui_held": "held",
    }[name]
    asks = figures["ask_s"]
    return (
        f"  web UI on that server ({size} passages, fake LLM, vectors {how}): peak "
        f"{figures['ui_peak_mb']:.0f} MB, then {figures['ui_anon_mb']:.0f} MB own + "
        f"{figures['ui_file_mb']:.0f} MB of mapped files, after {len(asks)} questions through "
        f"/ask (first {asks[0]:.2f} s: loads the search state; then p50 "
        f"{percentile(asks[1:], 0.5) or 0:.2f} s)"
    )


def bench_ui(port: int, work: Path, memory_max: int, count: int = 6) -> dict[str, Any]:
    """`python app.py` (fake LLM, DENSE_MEMORY_MAX=`memory_max`, POSTINGS_DIR in `work`) on
    the Chroma server's index: its peak memory after a few questions through the /ask API, its
    own and mapped memory then, and the questions' latency as a client sees it."""
    from gradio_client import Client

    ui_port = free_port()
    (work / "empty").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "CHROMA_HOST": "127.0.0.1",
        "CHROMA_PORT": str(port),
        "LLM_BACKEND": "fake",
        "UI_PORT": str(ui_port),
        "DENSE_MEMORY_MAX": str(memory_max),
        "DATA_DIR": str(work / "empty"),
        "POSTINGS_DIR": str(work / "postings"),
    }
    log = (work / "app.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{ui_port}/"
        wait_until_serving(url, proc, 900, 0.5)
        client = Client(url, verbose=False)
        latencies = []
        for question in dev_questions()[:count]:
            started = time.perf_counter()
            client.predict(question, api_name="/ask")
            latencies.append(time.perf_counter() - started)
        peak = peak_rss_mb(proc.pid)
        anon, mapped = status_mb(proc.pid, "RssAnon") or 0.0, status_mb(proc.pid, "RssFile") or 0.0
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    return {"ui_peak_mb": peak, "ui_anon_mb": anon, "ui_file_mb": mapped, "ask_s": latencies}
