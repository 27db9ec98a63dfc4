"""`python -m eval feedback`: answers rated in the web UI become questions of the eval.

    python -m eval feedback --out eval/questions/feedback.jsonl [--from FILE] [--yes]

For each rated answer not yet in --out it shows the question, the rating and comment, the
answer and the articles it rests on, then proposes the question's entry and asks the user to
confirm or correct it: whether the articles answer it, the facts a right answer holds, the
articles that hold them. A thumbs-up proposes the answer's names and figures as facts and the
sentences it cited as gold; a thumbs-down proposes no facts: somebody has to say what is right.
`--yes` takes every proposal that needs nobody's word (thumbs-up only). Questions are appended
to --out, so a run can stop (q) and go on later.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eval.questions import QuestionFileError, load_questions

Ask = Callable[[str], str]

_FIGURE = re.compile(r"\b\d(?:[\d.,/:]*\d)?\b")
_NAME = re.compile(r"\b[A-Z][\w'’-]+(?:\s+(?:[A-Z][\w'’-]+|\d+))+")
_MARKER = re.compile(r"\s*\[\d{1,3}\]")


def proposed_facts(answer: str, question: str, most: int = 5) -> list[str]:
    """The names (capitalised runs of words) and figures of an answer that its question does
    not already hold, in order: what a right answer must say again."""
    text = _MARKER.sub("", answer)
    found = [m.group() for m in _NAME.finditer(text)] + [m.group() for m in _FIGURE.finditer(text)]
    facts: list[str] = []
    for fact in found:
        if fact.lower() not in question.lower() and all(fact not in f for f in facts):
            facts.append(fact)
    return facts[:most]


def proposal(entry: dict[str, Any]) -> dict[str, Any]:
    """The question entry a rating suggests, before anybody confirms it."""
    up = entry["rating"] == "up"
    answerable = not (up and entry.get("refused"))
    cited = [c["doc_id"] for c in entry.get("citations", [])]
    gold = []
    if up:
        for sentence in entry.get("sentences", []):
            for evidence in sentence.get("evidence", []) if sentence.get("supported") else []:
                if evidence["text"].strip() and evidence["text"] not in gold:
                    gold.append(evidence["text"])
    facts = proposed_facts(entry.get("answer", ""), entry["question"]) if up else []
    return {
        "id": f"fb-{entry['answer_id'][:12]}",
        "question": entry["question"],
        "lang": entry.get("lang", ""),
        "answerable": answerable,
        "expected_docs": list(dict.fromkeys(cited)) if answerable and up else [],
        "gold": gold if answerable else [],
        "facts": [[f] for f in facts] if answerable else [],
        **({"history": entry["history"]} if entry.get("history") else {}),
    }


def _articles(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """The retrieved articles, in order: (id, how the user sees it)."""
    cited = {c["doc_id"] for c in entry.get("citations", [])}
    seen: dict[str, str] = {}
    for p in entry.get("passages", []):
        if p["doc_id"] not in seen:
            mark = ", cited" if p["doc_id"] in cited else ""
            seen[p["doc_id"]] = f"{p.get('title') or p['doc_id']} ({p.get('lang', '?')}{mark})"
    return list(seen.items())


def confirm(entry: dict[str, Any], ask: Ask, say: Callable[[str], None]) -> dict[str, Any] | None:
    """The entry as the user confirms it; None to skip it. Raises EOFError on q."""
    item = proposal(entry)
    articles = _articles(entry)
    thumb = "👍" if entry["rating"] == "up" else "👎"
    say(f"\n{thumb} {entry['question']!r} ({item['lang']})")
    if entry.get("comment"):
        say(f"   comment: {entry['comment']}")
    say(f"   answer: {entry.get('answer', '').strip() or '(none)'}")
    for i, (_, shown) in enumerate(articles, 1):
        say(f"   article {i}: {shown}")
    keep = ask("Keep it as a test question? [Y/n/q] ").strip().lower()
    if keep == "q":
        raise EOFError
    if keep == "n":
        return None
    default = "Y/n" if item["answerable"] else "y/N"
    said = ask(f"Do the articles answer it? [{default}] ").strip().lower()
    item["answerable"] = item["answerable"] if not said else said.startswith("y")
    if not item["answerable"]:
        return {**item, "expected_docs": [], "gold": [], "facts": []}
    shown = "; ".join(f[0] for f in item["facts"])
    said = ask(
        f"Facts a right answer holds (';' between facts, '|' between ways to say one) [{shown}]: "
    ).strip()
    if said:
        item["facts"] = [[a.strip() for a in f.split("|") if a.strip()] for f in said.split(";")]
        item["facts"] = [f for f in item["facts"] if f]
    ids = [doc for doc, _ in articles]
    shown = " ".join(str(ids.index(d) + 1) for d in item["expected_docs"] if d in ids)
    said = ask(f"Articles that hold the answer (their numbers) [{shown}]: ").strip()
    if said:
        picked = [ids[int(n) - 1] for n in re.findall(r"\d+", said) if 0 < int(n) <= len(ids)]
        if picked != item["expected_docs"]:
            item["gold"] = []  # the cited sentences were from other articles
        item["expected_docs"] = picked
    if not (item["expected_docs"] or item["gold"]):
        say("   skipped: an answerable question needs the article that answers it")
        return None
    return item


def _done_ids(out: Path) -> set[str]:
    if not out.is_file() or not out.read_text(encoding="utf-8").strip():
        return set()
    return {q.id for q in load_questions(out)}


def run(argv: list[str], ask: Ask = input, say: Callable[[str], None] = print) -> int:
    from bot.ratings import latest_ratings
    from bot.settings import Settings

    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m eval feedback", description=__doc__, formatter_class=raw
    )
    parser.add_argument("--out", type=Path, required=True, help="question file to append to")
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="the ratings (default: FEEDBACK_FILE, or feedback.jsonl beside DATA_DIR)",
    )
    parser.add_argument("--yes", action="store_true", help="take the proposals of thumbs-up")
    args = parser.parse_args(argv)
    source = args.source or Settings().feedback_path
    if not source.is_file():
        print(f"error: no ratings at {source} (rate answers in the web UI first)", file=sys.stderr)
        return 2
    try:
        done = _done_ids(args.out)
    except QuestionFileError as exc:
        print(f"error: {args.out} is not a valid question file:\n{exc}", file=sys.stderr)
        return 2
    todo = [e for e in latest_ratings(source) if proposal(e)["id"] not in done]
    say(f"{len(todo)} rated answers not yet in {args.out}")
    added = 0
    for entry in todo:
        if args.yes:
            item = proposal(entry) if entry["rating"] == "up" else None
        else:
            try:
                item = confirm(entry, ask, say)
            except EOFError:  # q, or the end of the input
                break
        if item is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(item, ensure_ascii=False) + "\n")
            added += 1
    say(f"{added} questions added to {args.out}; check it with: python -m eval validate {args.out}")
    return 0
