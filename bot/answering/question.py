"""The question and the conversation as the bot reads them, whatever a caller sends."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from bot.errors import BotError
from bot.retrieval.records import Filters

MAX_TOP_K = 50  # passages a caller may ask for (the API takes any number)
HISTORY_TURNS = 6
TURN_CHARS = 600
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # terminal colour codes pasted with a question
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

Turns = list[dict[str, str]]


@dataclass(frozen=True)
class Question:
    """What a reader asks, from any door (the page, /ask, /v1, the CLI, Python): the text, the
    conversation before it, which articles to search and how many passages to retrieve (None:
    TOP_K). The pipeline checks and cleans each part (check_question, clean_history)."""

    text: str
    history: Turns = field(default_factory=list)
    filters: Filters = field(default_factory=Filters)
    top_k: int | None = None


def check_question(question: str, max_chars: int) -> str:
    """The question as the bot reads it: NFC, control and invisible format characters (bidi
    overrides, zero-width) turned into spaces; a BotError when nothing is left or it is too
    long. The length is checked before any model sees it, so a huge question costs nothing."""
    if not isinstance(question, str):
        raise BotError("Please type a question: this one is not text.")
    if len(question) > 4 * max_chars:  # not worth cleaning
        cleaned = question
    else:
        cleaned = _ANSI.sub(" ", question)
        cleaned = "".join(
            " " if _CONTROL.match(c) or unicodedata.category(c) == "Cf" else c
            for c in unicodedata.normalize("NFC", cleaned)
        )
        cleaned = re.sub(r"\s+", " ", cleaned).strip()
    if not cleaned:
        raise BotError("Please type a question: this one is empty.")
    if len(cleaned) > max_chars:
        raise BotError(
            f"The question is too long ({len(cleaned):,} characters; the limit is {max_chars:,}, "
            "set by MAX_QUESTION_CHARS). Ask about one thing at a time."
        )
    return cleaned


def clean_history(history: Any) -> Turns:
    """The last turns that are {"role": "user" | "assistant", "content": text}, each cut to
    TURN_CHARS: whatever an API caller sends, the rewrite prompt stays small."""
    turns = [
        {"role": t["role"], "content": t["content"][:TURN_CHARS]}
        for t in (history if isinstance(history, list) else [])
        if isinstance(t, dict)
        and t.get("role") in ("user", "assistant")
        and isinstance(t.get("content"), str)
        and t["content"].strip()
    ]
    return turns[-HISTORY_TURNS:]


def clamp_top_k(top_k: int | None, default: int) -> int:
    """Passages to retrieve: the caller's number (or the setting) within 1..MAX_TOP_K."""
    return min(max(1, int(top_k or default)), MAX_TOP_K)
