"""Question files: JSONL, one question per line, validated with line-numbered errors.

    {"id": "d01", "question": "...", "lang": "en", "answerable": true,
     "expected_docs": ["003_b526725865409856"], "gold": ["substring of an answering passage"],
     "facts": [["alternative", "other alternative"], ["second fact"]],
     "history": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}

`history` is optional. An unanswerable question has empty expected_docs, gold and facts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.jsonl import iter_jsonl

REQUIRED = {
    "id": str,
    "question": str,
    "lang": str,
    "answerable": bool,
    "expected_docs": list,
    "gold": list,
    "facts": list,
}
OPTIONAL = {"history": list}


class QuestionFileError(ValueError):
    """The file is not a valid question file; the message lists every problem by line."""


@dataclass
class Question:
    id: str
    question: str
    lang: str
    answerable: bool
    expected_docs: list[str]
    gold: list[str]
    facts: list[list[str]]
    history: list[dict[str, str]] = field(default_factory=list)


def _problems(item: Any, seen: set[str]) -> list[str]:
    if not isinstance(item, dict):
        return ["a line must hold one JSON object"]
    problems = []
    for key, kind in REQUIRED.items():
        if key not in item:
            problems.append(f"missing {key!r}")
        elif not isinstance(item[key], kind):
            problems.append(f"{key!r} must be a {kind.__name__}, not {type(item[key]).__name__}")
    unknown = set(item) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        problems.append(f"unknown field(s) {', '.join(sorted(unknown))}")
    if problems:
        return problems
    if not item["id"].strip():
        problems.append("'id' is empty")
    elif item["id"] in seen:
        problems.append(f"duplicate id {item['id']!r}")
    if not item["question"].strip():
        problems.append("'question' is empty")
    if not all(isinstance(d, str) and d for d in item["expected_docs"]):
        problems.append("'expected_docs' must be a list of article ids (strings)")
    if not all(isinstance(g, str) and g.strip() for g in item["gold"]):
        problems.append("'gold' must be a list of non-empty strings")
    groups = item["facts"]
    if not all(
        isinstance(g, list) and g and all(isinstance(a, str) and a.strip() for a in g)
        for g in groups
    ):
        problems.append("'facts' must be a list of non-empty lists of strings")
    if item["answerable"] and not (item["gold"] or item["expected_docs"]):
        problems.append("an answerable question needs 'gold' or 'expected_docs'")
    if not item["answerable"] and (item["gold"] or item["facts"]):
        problems.append("an unanswerable question cannot have 'gold' or 'facts'")
    history = item.get("history", [])
    if not isinstance(history, list) or not all(
        isinstance(t, dict)
        and t.get("role") in ("user", "assistant")
        and isinstance(t.get("content"), str)
        for t in history
    ):
        problems.append("'history' must be a list of {role: user|assistant, content: str}")
    return problems


def load_questions(path: Path) -> list[Question]:
    """Every question of `path`, or QuestionFileError naming each bad line and why."""
    questions, errors, seen = [], [], set[str]()
    try:
        lines = list(iter_jsonl(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"{path}: cannot read: {exc}") from exc
    for number, item in lines:
        if isinstance(item, json.JSONDecodeError):
            errors.append(f"{path}:{number}: not JSON ({item.msg} at column {item.colno})")
            continue
        problems = _problems(item, seen)
        if problems:
            errors += [f"{path}:{number}: {p}" for p in problems]
            continue
        seen.add(item["id"])
        questions.append(Question(**item))
    if not questions and not errors:
        errors.append(f"{path}: no questions")
    if errors:
        raise QuestionFileError("\n".join(errors))
    return questions
