"""report.md and metrics.png of a run, with a reference run (ours or the baseline) beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.metrics import LABELS, RATE_METRICS, TIMINGS
from eval.questions import Question


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _name(summary: dict[str, Any]) -> str:
    mode = " (retrieval only)" if summary.get("retrieval_only") else ""
    return f"{summary.get('pipeline', '?')}{mode}, k={summary.get('k')}"


def write_report(
    out: Path,
    summary: dict[str, Any],
    results: list[dict[str, Any]],
    questions: list[Question],
    reference: dict[str, Any] | None,
) -> None:
    lines = [
        f"# Evaluation: {summary['questions_file']}",
        "",
        f"{summary['done']} of {summary['questions']} questions done, {summary['errors']} "
        f"errors; finished {summary['finished']}. k is the number of passages retrieved.",
        "",
        *_metrics_table(summary, reference),
        "",
        *_latency_table(summary, reference),
    ]
    if summary["error_kinds"]:
        lines += [
            "",
            "Errors: " + ", ".join(f"{k} ×{v}" for k, v in summary["error_kinds"].items()),
        ]
    if _plot(out / "metrics.png", summary, reference):
        lines += ["", "![metrics](metrics.png)"]
    lines += ["", *_questions_table(results, questions)]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _metrics_table(summary: dict[str, Any], reference: dict[str, Any] | None) -> list[str]:
    metrics, counts = summary["metrics"], summary["counts"]
    ref = reference["metrics"] if reference else {}
    head = ["| metric | " + _name(summary) + " | n |"]
    if reference:
        head = [f"| metric | {_name(summary)} | n | {_name(reference)} | n |"]
    lines = [*head, "|---|---|---|" + ("---|---|" if reference else "")]
    for name in RATE_METRICS:
        if metrics.get(name) is None and ref.get(name) is None:
            continue
        show = _ratio if name.endswith("mrr") else _pct
        row = f"| {LABELS[name]} | {show(metrics.get(name))} | {counts.get(name, 0)} |"
        if reference:
            row += f" {show(ref.get(name))} | {reference['counts'].get(name, 0)} |"
        lines.append(row)
    return lines


def _count(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _latency_table(summary: dict[str, Any], reference: dict[str, Any] | None) -> list[str]:
    extra = " reference p50 | reference p95 |" if reference else ""
    lines = ["| latency | p50 | p95 |" + extra, "|---|---|---|" + ("---|---|" if reference else "")]
    for name in TIMINGS:
        show = _secs if name.endswith("_s") else _count
        stats = summary["latency"].get(name, {})
        row = f"| {name} | {show(stats.get('p50'))} | {show(stats.get('p95'))} |"
        if reference:
            other = reference["latency"].get(name, {})
            row += f" {show(other.get('p50'))} | {show(other.get('p95'))} |"
        lines.append(row)
    return lines


def _questions_table(results: list[dict[str, Any]], questions: list[Question]) -> list[str]:
    lines = [
        "## Questions",
        "",
        "| id | lang | outcome | gold rank | doc rank | facts | cited | question |",
        "|---|---|---|---|---|---|---|---|",
    ]
    expected = {q.id: q for q in questions}
    for r in results:
        s, q = r.get("scores", {}), expected[r["id"]]
        if r.get("error"):
            outcome = "error"
        elif r.get("retrieval_only"):
            outcome = "retrieved"
        elif r.get("refused"):
            outcome = "refused" + ("" if not q.answerable else " (answerable)")
        else:
            outcome = "answered" + ("" if q.answerable else " (unanswerable)")
        facts = "–" if s.get("fact_recall") is None else f"{s['fact_recall']:.2f}"
        cited = "–" if s.get("cited") is None else ("yes" if s["cited"] else "no")
        lines.append(
            f"| {r['id']} | {q.lang} | {outcome} | {s.get('gold_rank') or '–'} | "
            f"{s.get('doc_rank') or '–'} | {facts} | {cited} | {q.question.replace('|', '/')} |"
        )
    return lines


def _plot(path: Path, summary: dict[str, Any], reference: dict[str, Any] | None) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [
        n
        for n in RATE_METRICS
        if summary["metrics"].get(n) is not None
        or (reference and reference["metrics"].get(n) is not None)
    ]
    if not names:
        return False
    runs = [summary] + ([reference] if reference else [])
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(names) + 1.2))
    height = 0.8 / len(runs)
    for i, run in enumerate(runs):
        values = [100 * (run["metrics"].get(n) or 0.0) for n in names]
        positions = [j + i * height for j in range(len(names))]
        ax.barh(positions, values, height=height, label=_name(run))
    ax.set_yticks([j + height * (len(runs) - 1) / 2 for j in range(len(names))])
    ax.set_yticklabels([LABELS[n] for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% (MRR × 100)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
