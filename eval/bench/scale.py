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

from bot.net import NotServing, free_port, wait_until_serving
from eval.bench.common import ROOT, dev_questions, ms, say
from eval.bench.updates import bench_updates
from eval.bench.updates import line as updates_line
from eval.latency import peak_rss_mb
from eval.metrics import percentile


def _sentences(passages: list[tuple[str, str]]) -> dict[str, list[str]]:
    from bot.text.sentences import split_sentences

    by_lang: dict[str, list[str]] = {}
    for lang, text in passages:
        for paragraph in text.split("\n"):
            for a, b in split_sentences(paragraph, lang):
                sentence = paragraph[a:b].strip()
                if len(sentence) > 20:
                    by_lang.setdefault(lang, []).append(sentence)
    return {lang: sorted(set(s)) for lang, s in by_lang.items()}


class Synthetic:
    """Passages joined from corpus sentences, vectors from those sentences' real vectors."""

    def __init__(self, sentences: dict[str, list[str]], embedder: Any, seed: int = 7) -> None:
        self.langs = sorted(sentences)
        self.sentences = sentences
        self.vectors = {lang: embedder.embed_passages(s) for lang, s in sentences.items()}
        self.rng = np.random.default_rng(seed)

    def batch(self, start: int, n: int) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
        texts, vectors, metas = [], [], []
        for i in range(start, start + n):
            lang = self.langs[int(self.rng.integers(len(self.langs)))]
            pick = self.rng.choice(len(self.sentences[lang]), int(self.rng.integers(3, 9)))
            texts.append(" ".join(self.sentences[lang][j] for j in pick))
            vec = self.vectors[lang][pick].sum(axis=0) + self.rng.normal(0, 0.02, 384)
            vectors.append(vec / np.linalg.norm(vec))
            doc = f"syn{i // 10:06d}"
            metas.append({"doc_id": doc, "story_id": doc, "lang": lang, "version": "v1",
                          "title": f"Synthetic {doc}", "chunk_index": i % 10, "n_chunks": 10,
                          "date": f"20{20 + i % 6}-0{1 + i % 9}-1{i % 10}"})  # fmt: skip
        return texts, np.asarray(vectors, dtype=np.float32), metas


def _fill(index: Any, synthetic: Synthetic, size: int, batch: int = 2000) -> float:
    from bot.index.store import _UNIT

    started = time.perf_counter()
    for start in range(0, size, batch):
        n = min(batch, size - start)
        texts, vectors, metas = synthetic.batch(start, n)
        ids = [f"{m['doc_id']}:v1:{m['chunk_index']:04d}" for m in metas]
        index.upsert_passages(ids, vectors, texts, metas)
        docs = sorted({m["doc_id"] for m in metas})
        index.catalog.upsert(
            ids=docs, embeddings=np.repeat(_UNIT, len(docs), axis=0),
            metadatas=[{"doc_id": d, "version": "v1", "pending": "", "n_passages": 10}
                       for d in docs],
        )  # fmt: skip
    return time.perf_counter() - started


def bench_retrieval(index: Any, embedder: Any, rounds: int) -> dict[str, Any]:
    from bot.index import state_store
    from bot.index.state_writer import StateWriter
    from bot.retrieval.records import Filters
    from bot.retrieval.retriever import Retriever, _allowed

    started = time.perf_counter()
    with StateWriter(index):  # no state yet: built once from every passage, as for an old index
        pass
    state_s = time.perf_counter() - started
    retriever = Retriever(index, embedder)
    started = time.perf_counter()
    state = retriever.state()
    load_s = time.perf_counter() - started
    questions = dev_questions()
    retriever.search(questions[0], 5)
    times: dict[str, list[float]] = {"embed": [], "dense": [], "lexical": [], "fused": [],
                                     "state_check": []}  # fmt: skip
    for _ in range(rounds):
        for q in questions:
            t0 = time.perf_counter()
            vector = embedder.embed_query(q)
            t1 = time.perf_counter()
            retriever._dense(vector, Filters(), state, _allowed(state, Filters()))
            t2 = time.perf_counter()
            scores = state.scores(q)
            np.argpartition(-scores, min(30, len(scores) - 1))[:30]
            t3 = time.perf_counter()
            retriever.search(q, 5)
            t4 = time.perf_counter()
            state_store.read_manifest(index)
            t5 = time.perf_counter()
            times["embed"].append(t1 - t0)
            times["dense"].append(t2 - t0)  # query embedding included
            times["lexical"].append(t3 - t2)
            times["fused"].append(t4 - t3)  # everything: embedding, state check, both, fetch
            times["state_check"].append(t5 - t4)
    return {
        "passages": len(state.ids),
        "state_build_s": state_s,
        "state_load_s": load_s,
        "state_mb": state_store.stored_bytes(index) / 1e6,
        **{f"{k}_ms": {"p50": ms(v, 0.5), "p95": ms(v, 0.95)} for k, v in times.items()},
    }


def _start_chroma(path: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )  # fmt: skip
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc, 60)
    except NotServing as exc:
        proc.kill()
        raise RuntimeError(f"the Chroma server did not start ({exc})") from None
    return proc, port


def _line(mode: str, r: dict[str, Any], fill_s: float) -> str:
    def pair(name: str) -> str:
        return f"{r[name + '_ms']['p50']:.1f}/{r[name + '_ms']['p95']:.1f}"

    return (
        f"  {mode:<8} {r['passages']:>7} passages: filled {fill_s:.0f} s "
        f"({r['passages'] / max(fill_s, 1e-9):.0f}/s), search state built "
        f"{r['state_build_s']:.1f} s ({r['state_mb']:.1f} MB), "
        f"loaded {r['state_load_s']:.2f} s; ms p50/p95: "
        f"dense {pair('dense')} (query embedding {pair('embed')}), lexical {pair('lexical')}, "
        f"fused {pair('fused')}, state check {pair('state_check')}"
    )


def bench_scale(
    embedder: Any, passages: list[tuple[str, str]], sizes: list[int], server_sizes: list[int],
    rounds: int, work: Path,
) -> dict[str, Any]:  # fmt: skip
    from bot.index.store import open_index
    from bot.settings import Settings

    synthetic = Synthetic(_sentences(passages), embedder)
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
        fill = _fill(index, synthetic, size)
        result = {"fill_s": fill, **bench_retrieval(index, embedder, rounds)}
        result["process_peak_mb"] = peak_rss_mb(os.getpid())
        result["updates"] = bench_updates(settings, embedder, work, size, None)
        out["embedded"][size] = result
        say(_line("embedded", result, fill))
        say(updates_line("embedded", size, result["updates"]))
        shutil.rmtree(work / f"emb{size}", ignore_errors=True)
    for size in server_sizes:
        proc, port = _start_chroma(work / f"srv{size}")
        try:
            settings = Settings(_env_file=None, chroma_host="127.0.0.1", chroma_port=port)
            index = open_index(settings, embedder.name, embedder.dim)
            fill = _fill(index, synthetic, size)
            result = {"fill_s": fill, **bench_retrieval(index, embedder, rounds)}
            env = {"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(port)}
            result["updates"] = bench_updates(settings, embedder, work, size, env)
            say(updates_line("server", size, result["updates"]))
            if size == max(server_sizes):
                ui = bench_ui(port, work)
                result.update(ui)
                say(
                    f"  web UI on that server ({size} passages, fake LLM): peak "
                    f"{ui['ui_peak_mb']:.0f} MB after {len(ui['ask_s'])} questions through /ask "
                    f"(first {ui['ask_s'][0]:.2f} s: loads the search state; then p50 "
                    f"{percentile(ui['ask_s'][1:], 0.5) or 0:.2f} s)"
                )
            peak = peak_rss_mb(proc.pid) or 0.0
            result["chroma_server_peak_mb"] = peak
            out["server"][size] = result
            say(_line("server", result, fill) + f"; Chroma server peak {peak:.0f} MB")
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            shutil.rmtree(work / f"srv{size}", ignore_errors=True)
    return out


def bench_ui(port: int, work: Path, count: int = 6) -> dict[str, Any]:
    """`python app.py` (fake LLM) on the Chroma server's index: its peak memory after a few
    questions through the /ask API, and their latency as a client sees it."""
    from gradio_client import Client

    ui_port = free_port()
    (work / "empty").mkdir(exist_ok=True)
    env = {**os.environ, "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(port),
           "LLM_BACKEND": "fake", "UI_PORT": str(ui_port),
           "DATA_DIR": str(work / "empty")}  # fmt: skip
    log = (work / "app.log").open("wb")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{ui_port}/"
        wait_until_serving(url, proc, 300, 0.5)
        client = Client(url, verbose=False)
        latencies = []
        for question in dev_questions()[:count]:
            started = time.perf_counter()
            client.predict(question, api_name="/ask")
            latencies.append(time.perf_counter() - started)
        peak = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    return {"ui_peak_mb": peak, "ask_s": latencies}
