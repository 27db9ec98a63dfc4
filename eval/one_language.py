"""Answers in one language, measured on the answers of a finished run: which of them carry
words of the articles' language (bot.text.foreign), and which still do once
bot.answering.one_language has rewritten them with the configured LLM.

    python -m eval.one_language --questions eval/questions/tune.jsonl --run runs/tune

For a run made before the rewrite existed, this is its before and after; a newer run records
both itself (`foreign`, `foreign_left` in results.jsonl; the `foreign_words` metric).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

from bot.answering.one_language import in_one_language
from bot.answering.support import SentenceCheck, check_support
from bot.deps import build_deps
from bot.settings import Settings
from bot.text.foreign import foreign_terms
from eval.questions import load_questions
from eval.relation import as_hits


def measure(questions_path: Path, run: Path) -> list[dict[str, Any]]:
    by_id = {q.id: q for q in load_questions(questions_path)}
    lines = (run / "results.jsonl").read_text(encoding="utf-8").splitlines()
    deps = build_deps(Settings())
    rows = []
    try:
        for result in (json.loads(line) for line in lines if line.strip()):
            q = by_id.get(result["id"])
            if q is None or result.get("verdict") not in ("supported", "partly supported"):
                continue
            hits = as_hits(result.get("retrieved", []))
            sources = {h.meta.lang for h in hits}
            keep = set(re.findall(r"\w+", q.question))
            terms = foreign_terms(result["answer"], q.lang, sources, keep)
            row: dict[str, Any] = {"id": q.id, "lang": q.lang, "found": [t.text for t in terms]}
            if terms:
                checked = check_support(deps.embedder, result["answer"], hits, len(hits), [])
                check = SentenceCheck(deps.embedder, hits, len(hits))
                started = time.perf_counter()
                fixed = in_one_language(deps.llm, checked, q.lang, sources, keep, check, {})
                row |= {
                    "left": fixed.left,
                    "before": result["answer"],
                    "after": fixed.checked.text,
                    "s": time.perf_counter() - started,
                }
            rows.append(row)
    finally:
        deps.close()
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    found = [r for r in rows if r["found"]]
    left = [r for r in found if r["left"]]
    seconds = sorted(r["s"] for r in found)
    english = [r for r in rows if r["lang"] == "en"]
    return "\n".join(
        [
            f"answers: {len(rows)} ({len(english)} in English)",
            f"with foreign words: {len(found)} ({sum(r['lang'] == 'en' for r in found)} English)",
            f"still with foreign words after the rewrite: {len(left)} "
            f"({sum(r['lang'] == 'en' for r in left)} English)",
            "rewrite time per answer with foreign words: "
            + (
                f"p50 {seconds[len(seconds) // 2]:.1f} s, max {seconds[-1]:.1f} s"
                if seconds
                else "-"
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.one_language", description=__doc__)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True, help="a finished run's --out")
    parser.add_argument("--out", type=Path, help="JSONL: each answer before and after")
    args = parser.parse_args(argv)
    rows = measure(args.questions, args.run)
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(report(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
