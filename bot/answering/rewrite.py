"""A follow-up question made standalone from the conversation, by the LLM."""

from __future__ import annotations

import time

from bot.answering.prompts import render
from bot.answering.question import TURN_CHARS, Turns
from bot.errors import BotError
from bot.models.llm import ChatModel


def rewrite(llm: ChatModel, question: str, history: Turns, timings: dict[str, float]) -> str:
    """The question made standalone from `history` (clean turns); the question itself when the
    model fails or says something that cannot be a question."""
    started = time.perf_counter()
    turns = "\n".join(f"{t.get('role', 'user')}: {t['content'][:TURN_CHARS]}" for t in history)
    prompt = render("rewrite", history=turns, question=question)
    try:
        rewritten = llm.complete([{"role": "user", "content": prompt}], 80).strip()
    except BotError:
        rewritten = ""
    timings["rewrite_s"] = time.perf_counter() - started
    rewritten = rewritten.splitlines()[0].strip().strip('"') if rewritten else ""
    if not rewritten or len(rewritten) > 4 * len(question) + 200:
        return question
    return rewritten
