"""`python -m eval compare A B`: metric deltas and the questions whose outcome changed. A and B
are run folders, or summary files such as eval/baselines/dev-ours.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from eval.jsonl import read_jsonl
from eval.metrics import flat


def _load(folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A run's summary and results by question id; a summary file alone (such as the
    committed ones in eval/baselines/) has no per-question results."""
    if folder.is_file():
        return json.loads(folder.read_text(encoding="utf-8")), {}
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return summary, {r["id"]: r for r in read_jsonl(folder / "results.jsonl")}


def outcome(result: dict[str, Any] | None) -> str:
    if result is None:
        return "missing"
    if result.get("error"):
        return "error"
    s = result.get("scores", {})
    parts = []
    if not result.get("retrieval_only"):
        if result.get("verdict") == "unsupported":
            parts.append("withheld")
        else:
            parts.append("refused" if result.get("refused") else "answered")
        if s.get("fact_recall") is not None:
            parts.append(f"facts {s['fact_recall']:.2f}")
    if "gold_rank" in s:
        parts.append(f"gold rank {s['gold_rank'] or '-'}")
    return ", ".join(parts)


def compare(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m eval compare DIR_A DIR_B", file=sys.stderr)
        return 2
    try:
        (sum_a, res_a), (sum_b, res_b) = _load(Path(argv[0])), _load(Path(argv[1]))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fa, fb = flat(sum_a), flat(sum_b)
    print(f"{'metric':<26} {'A':>9} {'B':>9} {'B - A':>9}")
    for name in [*fa, *(n for n in fb if n not in fa)]:
        a, b = fa.get(name), fb.get(name)
        delta = f"{b - a:+9.3f}" if a is not None and b is not None else f"{'':>9}"
        show = lambda v: f"{v:9.3f}" if v is not None else f"{'-':>9}"  # noqa: E731
        print(f"{name:<26} {show(a)} {show(b)} {delta}")
    if not res_a or not res_b:
        print("\n(no question-by-question comparison: a summary file holds no results)")
        return 0
    changed = [
        (i, outcome(res_a.get(i)), outcome(res_b.get(i)))
        for i in dict.fromkeys([*res_a, *res_b])
        if outcome(res_a.get(i)) != outcome(res_b.get(i))
    ]
    print(f"\n{len(changed)} question(s) changed outcome")
    for i, before, after in changed:
        question = (res_a.get(i) or res_b.get(i) or {}).get("question", "")
        print(f"  {i}: {before}  ->  {after}   {question[:70]}")
    return 0
