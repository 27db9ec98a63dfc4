"""4. The embedded LLM: time to first token and tokens/s."""

from __future__ import annotations

import time
from typing import Any

from eval.bench.common import dev_questions, say
from eval.latency import peak_rss_mb
from eval.metrics import percentile


def bench_llm(passages: list[tuple[str, str]]) -> dict[str, Any]:
    from bot.models.llm import make_models
    from bot.settings import Settings

    llm, server = make_models(Settings(_env_file=None, llm_backend="local"))
    llm.start()
    runs = []
    try:
        for n, question in enumerate(dev_questions()[:3]):
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
            runs.append(
                {
                    "first_token_s": (first or end) - started,
                    "chunks": pieces,
                    "tokens_per_s": (pieces - 1) / gen_s if gen_s > 0 else 0.0,
                }
            )
        pid = server.pid if server is not None else None
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
