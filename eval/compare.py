"""`python -m eval compare DIR_A DIR_B`: metric deltas and the questions whose outcome changed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from eval.metrics import flat


def _load(folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    results = {}
    for line in (folder / "results.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            results[item["id"]] = item
    return summary, results


def outcome(result: dict[str, Any] | None) -> str:
    if result is None:
        return "missing"
    if result.get("error"):
        return "error"
    s = result.get("scores", {})
    parts = []
    if not result.get("retrieval_only"):
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
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fa, fb = flat(sum_a), flat(sum_b)
    print(f"{'metric':<26} {'A':>9} {'B':>9} {'B - A':>9}")
    for name in [*fa, *(n for n in fb if n not in fa)]:
        a, b = fa.get(name), fb.get(name)
        delta = f"{b - a:+9.3f}" if a is not None and b is not None else f"{'':>9}"
        show = lambda v: f"{v:9.3f}" if v is not None else f"{'-':>9}"  # noqa: E731
        print(f"{name:<26} {show(a)} {show(b)} {delta}")
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
