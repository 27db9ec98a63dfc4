"""Time every stage of answering over a question file and print the figures.

    python -m eval.latency --questions eval/questions/dev.jsonl [--out latency.json]

Uses the bot's own settings (LLM_BASE_URL etc.); with none, the embedded LLM is started and
its peak memory (VmHWM) read from /proc when the run ends.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.metrics import percentile
from eval.questions import Question, load_questions

if TYPE_CHECKING:
    from bot.deps import Deps

STAGES = ["retrieve_s", "sources_s", "rewrite_s", "first_token_s", "total_s", "tokens_per_s"]


def peak_rss_mb(pid: int) -> float | None:
    return status_mb(pid, "VmHWM")


def status_mb(pid: int, field: str) -> float | None:
    """One memory figure of a process from /proc (VmHWM: its peak; RssAnon: its own now;
    RssFile: mapped files now, shared with other processes and given back under pressure);
    None when the process or the figure is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((x for x in status.splitlines() if x.startswith(field + ":")), "")
    return int(line.split()[1]) / 1024 if line else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.latency")
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from bot.deps import build_deps, stop_on_sigterm

    stop_on_sigterm()  # the `finally` below stops the embedded LLM server this run started
    questions = load_questions(args.questions)
    started = time.perf_counter()
    deps = build_deps()
    try:
        rows = [_timed(deps, q) for q in questions]
        pid = deps.prefix_server.pid if deps.prefix_server is not None else None
        server_mb = peak_rss_mb(pid) if pid else None
    except KeyboardInterrupt:
        print("(stopped)", file=sys.stderr)
        return 130
    finally:
        deps.close()
    summary: dict[str, Any] = {"questions": len(rows), "wall_s": time.perf_counter() - started}
    for stage in STAGES:
        values = [float(r[stage]) for r in rows if stage in r]
        if values:
            summary[stage] = {
                "n": len(values),
                "p50": percentile(values, 0.5),
                "p95": percentile(values, 0.95),
                "mean": statistics.fmean(values),
            }
    summary["llm_server_peak_rss_mb"] = server_mb
    summary["refused"] = sum(r["refused"] for r in rows)
    summary["with_citations"] = sum(r["cited"] > 0 for r in rows)
    summary["errors"] = sum(bool(r["error"]) for r in rows)
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    return 0


def _timed(deps: Deps, q: Question) -> dict[str, Any]:
    from bot.answering.pipeline import answer
    from bot.answering.question import Question as Asked

    result = answer(deps, Asked(q.question, q.history))
    print(
        f"{q.id}: " + " ".join(f"{k}={v:.2f}" for k, v in result.timings.items()), file=sys.stderr
    )
    return {
        "id": q.id,
        "refused": result.refused,
        "error": result.error,
        "cited": len(result.citations),
        **result.timings,
    }


if __name__ == "__main__":
    sys.exit(main())
