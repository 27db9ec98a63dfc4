"""Ratings of answers, kept as JSONL (FEEDBACK_FILE, by default beside DATA_DIR).

Every rating, change of rating or comment appends one line that holds the whole answer record
(question, conversation, answer, passages, settings), so a line alone is a test case and a crash
loses at most the line being written. The latest line of an answer is its rating;
`python -m eval feedback` turns rated answers into a question file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bot.answering.records import Answer
from bot.settings import Settings

log = logging.getLogger("newsqa.feedback")

RATINGS = {True: "up", False: "down"}  # gr.LikeData.liked; "" is a rating taken back


def answer_record(
    result: Answer,
    history: list[dict[str, str]],
    settings: Settings,
    top_k: int,
    languages: list[str],
) -> dict[str, Any]:
    """What a rating keeps of an answer: enough to ask the question again and judge it."""
    return {
        "answer_id": uuid.uuid4().hex,
        "asked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "history": [{"role": t["role"], "content": t["content"]} for t in history],
        **result.to_dict(),
        "settings": {
            "top_k": top_k or settings.top_k,
            "languages": list(languages),
            "llm_backend": settings.llm_backend,
            "llm_model": settings.llm_model,
            "embed_model": settings.embed_model,
        },
    }


class FeedbackLog:
    """Append-only: one line per rating or comment; writers in one process take turns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def rate(self, record: dict[str, Any], liked: bool | str, comment: str = "") -> dict[str, Any]:
        rating = RATINGS.get(liked) if isinstance(liked, bool) else None
        entry = {
            "rated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "rating": rating,
            "comment": comment.strip(),
            **record,
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        log.info(
            "answer %s rated %s%s",
            record["answer_id"],
            rating or "(taken back)",
            " with a comment" if comment.strip() else "",
        )
        return entry


def latest_ratings(path: Path) -> list[dict[str, Any]]:
    """Each answer's latest line, in the order answers were first rated; answers whose rating
    was taken back are left out. A line cut short by a crash is skipped with a warning."""
    latest: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                key = entry["answer_id"]
            except (ValueError, KeyError, TypeError):
                log.warning("%s line %d: not a rating, skipped", path, number)
                continue
            latest[key] = entry
    return [e for e in latest.values() if e.get("rating") in ("up", "down")]
