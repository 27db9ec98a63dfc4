"""How well the relation check (bot.answering.relation) tells right answers from wrong ones, on
the answers of a finished run: each sentence the citation check supported is put to the LLM
with its evidence sentence, and an answer counts as rejected at a threshold when no sentence of
it is stated with at least that probability.

    python -m eval.relation --questions eval/questions/tune.jsonl --run runs/tune [--out FILE]

Right: an answerable question's answer that holds every fact; wrong: one that holds none, or
any answer to an off-corpus question. Prints, per threshold, the wrong answers it rejects and
the right ones it rejects; the probabilities go to --out (JSONL) to be read again.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bot.answering.relation import states
from bot.answering.support import check_support
from bot.deps import build_deps
from bot.retrieval.records import Hit, PassageMeta
from bot.settings import Settings
from bot.text.language import detect_language
from eval.metrics import fact_holds
from eval.questions import Question, load_questions

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def as_hits(passages: list[dict[str, Any]]) -> list[Hit]:
    """The passages a run recorded (`retrieved`), as retrieval hits, [n] = rank."""
    return [
        Hit(
            f"{p['doc_id']}:{p['rank']}",
            p["text"],
            PassageMeta(doc_id=p["doc_id"], lang=detect_language(p["text"])),
            0.0,
        )
        for p in passages
    ]


def _kind(q: Question, answer: str) -> str:
    if not q.answerable:
        return "wrong"
    held = [fact_holds(answer, group) for group in q.facts]
    return "right" if held and all(held) else "wrong" if not any(held) else "partial"


def measure(questions: list[Question], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    deps = build_deps(Settings())
    by_id = {q.id: q for q in questions}
    rows = []
    try:
        for result in results:
            q = by_id.get(result["id"])
            if q is None or result.get("verdict") not in ("supported", "partly supported"):
                continue
            hits = as_hits(result.get("retrieved", []))
            checked = check_support(deps.embedder, result["answer"], hits, len(hits), [])
            sentences = []
            for claim in checked.claims:
                if not claim.supported:
                    continue
                e = claim.evidence[0]
                evidence = hits[e.n - 1].text[e.start : e.end]
                started = time.perf_counter()
                p = states(deps.llm, q.question, evidence, claim.text)
                sentences.append(
                    {
                        "claim": claim.text,
                        "evidence": evidence,
                        "p": p,
                        "s": time.perf_counter() - started,
                    }
                )
            rows.append({"id": q.id, "kind": _kind(q, result["answer"]), "sentences": sentences})
    finally:
        deps.close()
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    judged = [r for r in rows if r["sentences"] and r["kind"] != "partial"]
    right = [r for r in judged if r["kind"] == "right"]
    wrong = [r for r in judged if r["kind"] == "wrong"]
    seconds = [s["s"] for r in rows for s in r["sentences"]]
    lines = [
        f"answers judged: {len(judged)} ({len(right)} right, {len(wrong)} wrong; "
        f"{sum(r['kind'] == 'partial' for r in rows)} partly right left out); "
        f"{len(seconds)} sentences, {sum(seconds) / max(1, len(seconds)):.1f} s each",
        "threshold | wrong rejected | right rejected",
    ]
    for t in THRESHOLDS:

        def rejected(group: list[dict[str, Any]], t: float = t) -> int:
            return sum(all(s["p"] < t for s in r["sentences"]) for r in group)

        lines.append(
            f"{t:.1f} | {rejected(wrong)} of {len(wrong)} | {rejected(right)} of {len(right)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.relation", description=__doc__)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True, help="a finished run's --out")
    parser.add_argument("--out", type=Path, help="JSONL of every sentence's probability")
    args = parser.parse_args(argv)
    questions = load_questions(args.questions)
    lines = (args.run / "results.jsonl").read_text(encoding="utf-8").splitlines()
    rows = measure(questions, [json.loads(line) for line in lines if line.strip()])
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(report(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
