"""A resumable evaluation run: questions in, DIR/results.jsonl + summary.json + report.md out."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bot.settings import Settings
from eval.jsonl import read_jsonl
from eval.judge import Judge
from eval.metrics import score, summarize
from eval.questions import Question
from eval.report import write_report


class RunError(Exception):
    """The run cannot start or continue; the message says why."""


@dataclass
class RunConfig:
    questions: Path
    out: Path
    pipeline: str = "ours"
    retrieval_only: bool = False
    limit: int | None = None
    reference: Path | None = None

    def fingerprint(self, settings: Settings) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "retrieval_only": self.retrieval_only,
            "questions": str(self.questions),
            "embedder": settings.embedder,
            "llm_backend": settings.llm_backend,
            "llm_base_url": settings.llm_base_url or "",
            "llm_model": settings.llm_model,
            "top_k": settings.top_k,
            "context_passages": settings.context_passages,
            "context_tokens": settings.context_tokens,
            "chunk_size": settings.chunk_size,
            "pivot_language": settings.pivot_language,
            "read_translation": settings.read_translation,
            "check_translation": settings.check_translation,
            "check_quantity": settings.check_quantity,
        }


def _read_results(path: Path) -> dict[str, dict[str, Any]]:
    """Results already written; a line cut short by a kill is skipped (that question runs
    again)."""
    if not path.exists():
        return {}
    return {item["id"]: item for item in read_jsonl(path, skip_bad=True)}


def run(
    config: RunConfig,
    questions: list[Question],
    settings: Settings,
    make_pipeline: Callable[[Settings, bool], Any],
    judge: Judge | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or finish) the evaluation in config.out; returns the summary."""
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    meta_path, results_path = out / "run.json", out / "results.jsonl"
    fingerprint = config.fingerprint(settings)
    if meta_path.exists():
        previous = json.loads(meta_path.read_text(encoding="utf-8"))
        if previous.get("config") != fingerprint:
            changed = [
                k for k in fingerprint if previous.get("config", {}).get(k) != fingerprint[k]
            ]
            raise RunError(
                f"{out} holds a run with other settings ({', '.join(changed)}); "
                "give another --out, or delete it to start over."
            )
    meta_path.write_text(json.dumps({"config": fingerprint}, indent=2), encoding="utf-8")
    if config.limit:
        questions = questions[: config.limit]
    done = {i: r for i, r in _read_results(results_path).items() if not r.get("error")}
    todo = [q for q in questions if q.id not in done]
    k = settings.top_k
    if todo:
        pipeline = make_pipeline(settings, config.retrieval_only)
        k = getattr(pipeline, "k", k)
        try:
            with results_path.open("a", encoding="utf-8") as sink:
                bar = tqdm(todo, desc=f"{config.pipeline}", unit="q", disable=not progress)
                for q in bar:
                    result = _one(pipeline, q, k, judge)
                    done[q.id] = result
                    sink.write(json.dumps(result, ensure_ascii=False) + "\n")
                    sink.flush()
        finally:
            pipeline.close()
    else:
        k = next((r.get("k", k) for r in done.values()), k)
    ordered = [done[q.id] for q in questions if q.id in done]
    _rewrite(results_path, ordered)
    summary = summarize(
        questions,
        ordered,
        {
            "pipeline": config.pipeline,
            "retrieval_only": config.retrieval_only,
            "k": k,
            "questions_file": str(config.questions),
            "config": fingerprint,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    reference = _reference(config.reference)
    write_report(out, summary, ordered, questions, reference)
    return summary


def _one(pipeline: Any, q: Question, k: int, judge: Judge | None) -> dict[str, Any]:
    base = {"id": q.id, "question": q.question, "lang": q.lang, "k": k}
    started = time.perf_counter()
    try:
        result = {**base, **pipeline.run(q)}
    except Exception as exc:  # recorded, and the run goes on
        result = {
            **base,
            "error": f"{type(exc).__name__}: {exc}",
            "answer": "",
            "refused": False,
            "retrieved": [],
            "citations": [],
            "timings": {"total_s": time.perf_counter() - started},
        }
    result["scores"] = score(q, result, k)
    if judge and not result.get("error") and not result.get("retrieval_only"):
        try:
            result["scores"]["faithfulness"] = judge.faithfulness(result)
        except Exception as exc:
            result["judge_error"] = f"{type(exc).__name__}: {exc}"
    return result


def _rewrite(path: Path, results: list[dict[str, Any]]) -> None:
    part = path.with_suffix(".part")
    with part.open("w", encoding="utf-8") as sink:
        for result in results:
            sink.write(json.dumps(result, ensure_ascii=False) + "\n")
    os.replace(part, path)


def _reference(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    file = path / "summary.json" if path.is_dir() else path
    if not file.is_file():
        return None
    return dict(json.loads(file.read_text(encoding="utf-8")))
