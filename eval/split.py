"""The dev set's two halves: *tune*, on which designs are chosen, and *check*, which only
reports (docs/evaluation.md).

    python -m eval split            # writes eval/questions/tune.jsonl and check.jsonl
    python -m eval split --check    # exit 1 when the committed halves differ from a new split

The questions of `written.jsonl` are dealt at random (a fixed seed) into the two halves,
separately for each kind (answerable, off-corpus, follow-up), so that each half holds its share
of every kind; the questions of `dev-wide.jsonl`, which earlier designs were tuned on, all go
to *tune*, and as many of the written ones to *check* as make the halves equal.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from eval.jsonl import read_jsonl

QUESTIONS = Path(__file__).resolve().parent / "questions"
SEED = 31


def _kind(item: dict[str, object]) -> str:
    if item.get("history"):
        return "follow-up"
    return "answerable" if item["answerable"] else "off-corpus"


def split(
    written: list[dict[str, object]], tuned: list[dict[str, object]], seed: int = SEED
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """(tune, check): `tuned` all in tune; `written` dealt so that the halves are equal in size
    (tune gets the odd one) and each kind is split in the same proportion."""
    total = len(written) + len(tuned)
    wanted = total // 2  # questions for check, all of them written ones
    if wanted > len(written):
        raise ValueError(f"{len(written)} written questions cannot fill half of {total}")
    rng = random.Random(seed)
    kinds = sorted({_kind(q) for q in written})
    groups = {k: [q for q in written if _kind(q) == k] for k in kinds}
    for group in groups.values():
        rng.shuffle(group)
    # each kind's share of check, rounded so that the shares add up to `wanted`
    exact = {k: len(g) * wanted / len(written) for k, g in groups.items()}
    share = {k: int(v) for k, v in exact.items()}
    for k in sorted(kinds, key=lambda k: share[k] - exact[k])[: wanted - sum(share.values())]:
        share[k] += 1
    check = [q for k in kinds for q in groups[k][: share[k]]]
    chosen = {id(q) for q in check}
    tune = [*tuned, *(q for q in written if id(q) not in chosen)]
    order = {id(q): i for i, q in enumerate(written)}
    check.sort(key=lambda q: order[id(q)])
    return tune, check


def _lines(items: list[dict[str, object]]) -> str:
    return "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in items)


def main(argv: list[str]) -> int:
    tune, check = split(
        read_jsonl(QUESTIONS / "written.jsonl"), read_jsonl(QUESTIONS / "dev-wide.jsonl")
    )
    halves = {"tune.jsonl": _lines(tune), "check.jsonl": _lines(check)}
    if argv == ["--check"]:
        stale = [n for n, text in halves.items() if (QUESTIONS / n).read_text("utf-8") != text]
        for name in stale:
            print(f"eval/questions/{name} differs from `python -m eval split`", file=sys.stderr)
        return 1 if stale else 0
    if argv:
        print("usage: python -m eval split [--check]", file=sys.stderr)
        return 2
    for name, text in halves.items():
        (QUESTIONS / name).write_text(text, encoding="utf-8")
    print(f"tune: {len(tune)} questions, check: {len(check)} questions")
    return 0
