"""Answer a question from the index: retrieve, show the sources, stream a cited answer.

deps = build_deps()
answer(deps, "What did To Lam ask of Hai Phong?")            # -> Answer
for event in stream_answer(deps, question, history=[...]):   # Sources, Token..., Done
    ...
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bot import guard
from bot.citations import (
    REFUSAL_MARKER,
    CitationFilter,
    cited_numbers,
    is_refusal,
    may_become_refusal,
)
from bot.deps import Deps
from bot.errors import BotError
from bot.language import detect_question_language, dont_know, language_name
from bot.prompts import render
from bot.retrieval import Filters, Hit

log = logging.getLogger(__name__)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # terminal colour codes pasted with a question
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_TOP_K = 50  # passages a caller may ask for (the API takes any number)
_HISTORY_TURNS = 6
_TURN_CHARS = 600


@dataclass
class Citation:
    n: int
    passage_id: str
    doc_id: str
    title: str
    lang: str
    source_url: str
    text: str
    # The same passage in other translations of the story: {"id", "doc_id", "lang", "title"}.
    alternatives: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Answer:
    question: str
    standalone_question: str
    lang: str
    text: str = ""
    refused: bool = False
    passages: list[Hit] = field(default_factory=list)  # [n] is passages[n - 1]
    context_n: int = 0  # the first context_n passages were given to the model
    citations: list[Citation] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""
    guard: str = ""  # why a reply was replaced by the refusal: "uncited", "prompt leak"
    raw_text: str = ""  # what the model wrote, before citation filtering (for evaluation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "lang": self.lang,
            "answer": self.text,
            "refused": self.refused,
            "error": self.error,
            "guard": self.guard,
            "citations": [vars(c) for c in self.citations],
            "passages": [
                {
                    "n": n,
                    "id": h.id,
                    "doc_id": h.doc_id,
                    "title": h.meta.get("title", ""),
                    "lang": h.meta.get("lang", ""),
                    "source_url": h.meta.get("source_url", ""),
                    "date": h.meta.get("date", ""),
                    "score": round(h.score, 5),
                    "given_to_model": n <= self.context_n,
                    "text": h.text,
                    "alternatives": [a.id for a in h.alternatives],
                }
                for n, h in enumerate(self.passages, 1)
            ],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


@dataclass
class Sources:
    """Retrieval is done: the passages, numbered as the answer will cite them."""

    passages: list[Hit]
    context_n: int
    standalone_question: str


@dataclass
class Token:
    text: str


@dataclass
class Done:
    answer: Answer


Event = Sources | Token | Done


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


def stream_answer(
    deps: Deps,
    question: str,
    history: list[dict[str, str]] | None = None,
    filters: Filters | None = None,
    top_k: int | None = None,
) -> Iterator[Event]:
    """Sources first, then the answer's tokens as they arrive, then the finished Answer."""
    settings = deps.settings
    started = time.perf_counter()
    question = check_question(question, settings.max_question_chars)
    history = _clean_history(history)
    asked = [t["content"] for t in history if t.get("role") == "user"]
    previous_lang = detect_question_language(asked[-1]) if asked else "en"
    result = Answer(question, question, detect_question_language(question, previous_lang))
    timings = result.timings
    if history:
        result.standalone_question = _rewrite(deps, question, history, timings)
    k = min(max(1, int(top_k or settings.top_k)), MAX_TOP_K)
    hits, timings["retrieve_s"] = deps.retriever.search(result.standalone_question, k, filters)
    result.passages = hits
    result.context_n = _context_size(hits, settings.context_passages, settings.context_tokens)
    timings["sources_s"] = time.perf_counter() - started
    yield Sources(hits, result.context_n, result.standalone_question)

    if not hits:
        result.text, result.refused = dont_know(result.lang), True
    else:
        yield from _generate(deps, result, started)
    timings["total_s"] = time.perf_counter() - started
    yield Done(result)


def _clean_history(history: Any) -> list[dict[str, str]]:
    """The last turns that are {"role": "user" | "assistant", "content": text}, each cut to
    _TURN_CHARS: whatever an API caller sends, the rewrite prompt stays small."""
    turns = [
        {"role": t["role"], "content": t["content"][:_TURN_CHARS]}
        for t in (history if isinstance(history, list) else [])
        if isinstance(t, dict) and t.get("role") in ("user", "assistant")
        and isinstance(t.get("content"), str) and t["content"].strip()
    ]  # fmt: skip
    return turns[-_HISTORY_TURNS:]


def _context_size(hits: list[Hit], most: int, budget: int) -> int:
    """How many of the best passages the model reads: at most `most`, within `budget` tokens."""
    n, used = 0, 0
    for hit in hits[:most]:
        used += int(hit.meta.get("n_tokens", 0))
        if n and used > budget:
            break
        n += 1
    return n


def _generate(deps: Deps, result: Answer, started: float) -> Iterator[Token]:
    timings = result.timings
    messages = build_messages(
        result.standalone_question, result.passages[: result.context_n], result.lang
    )
    leaked = guard.LeakCheck(messages[0]["content"], messages[1]["content"])
    citations = CitationFilter(result.context_n)
    raw, shown, tokens = "", "", 0
    gate = True  # hold text back while it may still be a refusal
    first: float | None = None
    try:
        for piece in deps.llm.stream(messages, deps.settings.llm_max_tokens):
            if first is None:
                first = time.perf_counter()
                timings["first_token_s"] = first - started
            tokens += 1
            raw += piece
            if leaked(raw):
                result.guard = "prompt leak"
                break
            if gate:
                if is_refusal(raw):
                    break  # no need to hear the rest
                if may_become_refusal(raw):
                    continue
                gate, piece = False, raw
            text = citations.feed(piece)
            shown += text
            if text:
                yield Token(text)
    except BotError as exc:
        result.error = str(exc)
    result.raw_text = raw
    tail = "" if result.guard or is_refusal(raw) else (
        (citations.feed(raw) if gate else "") + citations.flush()
    )  # fmt: skip
    numbers = [n for n in cited_numbers(shown + tail) if n <= result.context_n]
    if not result.error and raw.strip() and not is_refusal(raw) and not numbers:
        result.guard = result.guard or "uncited"  # an answer that rests on no source
    if result.guard:
        log.warning("reply replaced by the refusal (%s): %r", result.guard, raw[:300])
    if result.guard or (not result.error and (is_refusal(raw) or not raw.strip())):
        result.text, result.refused, numbers = dont_know(result.lang), True, []
        yield Token(result.text)
    else:
        shown += tail
        if tail:
            yield Token(tail)
        result.text = shown.strip()
        if result.error:
            result.text = (result.text + "\n\n" if result.text else "") + result.error
    timings["generate_s"] = time.perf_counter() - (first or time.perf_counter())
    timings["tokens"] = tokens
    if first is not None and tokens > 1 and timings["generate_s"] > 0:
        timings["tokens_per_s"] = (tokens - 1) / timings["generate_s"]
    result.citations = [_citation(n, result.passages[n - 1]) for n in numbers]


def _citation(n: int, hit: Hit) -> Citation:
    meta = hit.meta
    alternatives = [
        {"id": a.id, "doc_id": a.doc_id, "lang": str(a.meta.get("lang", "")),
         "title": str(a.meta.get("title", ""))}
        for a in hit.alternatives
    ]  # fmt: skip
    return Citation(n, hit.id, hit.doc_id, str(meta.get("title", "")), str(meta.get("lang", "")),
                    str(meta.get("source_url", "")), hit.text, alternatives)  # fmt: skip


def build_messages(question: str, passages: list[Hit], lang: str) -> list[dict[str, str]]:
    name = language_name(lang)
    sources = "\n\n".join(
        render("source", n=n, title=h.meta.get("title", ""),
               language=language_name(str(h.meta.get("lang", ""))),
               text=guard.for_model(h.text))
        for n, h in enumerate(passages, 1)
    )  # fmt: skip
    return [
        {"role": "system", "content": render("answer_system", language=name,
                                             refusal_marker=REFUSAL_MARKER)},
        {"role": "user", "content": render("answer_user", sources=sources, question=question,
                                           language=name, refusal_marker=REFUSAL_MARKER)},
    ]  # fmt: skip


def _rewrite(
    deps: Deps, question: str, history: list[dict[str, str]], timings: dict[str, float]
) -> str:
    """The question made standalone from the conversation; the question itself on failure."""
    started = time.perf_counter()
    turns = "\n".join(
        f"{t.get('role', 'user')}: {t['content'][:_TURN_CHARS]}" for t in history[-_HISTORY_TURNS:]
    )
    prompt = render("rewrite", history=turns, question=question)
    try:
        rewritten = deps.llm.complete([{"role": "user", "content": prompt}], 80).strip()
    except BotError:
        rewritten = ""
    timings["rewrite_s"] = time.perf_counter() - started
    rewritten = rewritten.splitlines()[0].strip().strip('"') if rewritten else ""
    if not rewritten or len(rewritten) > 4 * len(question) + 200:
        return question
    return rewritten


def answer(
    deps: Deps,
    question: str,
    history: list[dict[str, str]] | None = None,
    filters: Filters | None = None,
    top_k: int | None = None,
) -> Answer:
    for event in stream_answer(deps, question, history, filters, top_k):
        if isinstance(event, Done):
            return event.answer
    raise AssertionError("stream_answer ended without an answer")
