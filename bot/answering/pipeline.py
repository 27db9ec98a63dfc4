"""Answer a question from the index: retrieve, show the sources, stream a cited answer.

deps = build_deps()
answer(deps, "What did To Lam ask of Hai Phong?")            # -> Answer
for event in stream_answer(deps, question, history=[...]):   # Sources, Token..., Done
    ...
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import ParamSpec

from bot.answering.prompts import build_messages
from bot.answering.question import check_question, clamp_top_k, clean_history
from bot.answering.records import Answer, Citation, Done, Event, Sources, Token
from bot.answering.refusal import dont_know
from bot.answering.reply import ReplyFilter
from bot.answering.rewrite import rewrite
from bot.deps import Deps
from bot.errors import BotError
from bot.retrieval.context import context_size
from bot.retrieval.records import Filters
from bot.text.language import detect_question_language

log = logging.getLogger(__name__)
P = ParamSpec("P")


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
    turns = clean_history(history)
    asked = [t["content"] for t in turns if t.get("role") == "user"]
    previous_lang = detect_question_language(asked[-1]) if asked else "en"
    result = Answer(question, question, detect_question_language(question, previous_lang))
    timings = result.timings
    if turns:
        result.standalone_question = rewrite(deps.llm, question, turns, timings)
    k = clamp_top_k(top_k, settings.top_k)
    hits, timings["retrieve_s"] = deps.retriever.search(result.standalone_question, k, filters)
    result.passages = hits
    result.context_n = context_size(hits, settings.context_passages, settings.context_tokens)
    timings["sources_s"] = time.perf_counter() - started
    yield Sources(hits, result.context_n)

    if not hits:
        result.text, result.refused = dont_know(result.lang), True
    else:
        yield from _generate(deps, result, started)
    timings["total_s"] = time.perf_counter() - started
    yield Done(result)


def _generate(deps: Deps, result: Answer, started: float) -> Iterator[Token]:
    """Stream the model's reply through the checks of bot.answering.reply into `result`."""
    timings = result.timings
    passages = result.passages[: result.context_n]
    messages = build_messages(result.standalone_question, passages, result.lang)
    reply = ReplyFilter(result.context_n, messages[0]["content"], messages[1]["content"])
    first: float | None = None
    tokens = 0
    log.info("asking %s, %d passages to read", deps.llm.where, result.context_n)
    try:
        for piece in deps.llm.stream(messages, deps.settings.llm_max_tokens):
            if first is None:
                first = time.perf_counter()
                timings["first_token_s"] = first - started
            tokens += 1
            text = reply.feed(piece)
            if reply.done:
                break
            if text:
                yield Token(text)
    except BotError as exc:
        result.error = str(exc)
    verdict = reply.finish(failed=bool(result.error))
    result.raw_text, result.guard = reply.raw, verdict.guard
    if verdict.guard:
        log.warning("reply replaced by the refusal (%s): %r", verdict.guard, reply.raw[:300])
    if verdict.refused:
        result.text, result.refused = dont_know(result.lang), True
        yield Token(result.text)
    else:
        if verdict.tail:
            yield Token(verdict.tail)
        result.text = verdict.text
        if result.error:
            result.text = (result.text + "\n\n" if result.text else "") + result.error
    timings["generate_s"] = time.perf_counter() - (first or time.perf_counter())
    timings["tokens"] = tokens
    if first is not None and tokens > 1 and timings["generate_s"] > 0:
        timings["tokens_per_s"] = (tokens - 1) / timings["generate_s"]
    result.citations = [Citation(n, result.passages[n - 1]) for n in verdict.cited]


def _finished(stream: Callable[P, Iterator[Event]]) -> Callable[P, Answer]:
    def run(*args: P.args, **kwargs: P.kwargs) -> Answer:
        result: Answer | None = None
        for event in stream(*args, **kwargs):
            if isinstance(event, Done):
                result = event.answer
        if result is None:
            raise RuntimeError(f"{stream.__name__} ended without an answer")
        return result

    run.__doc__ = f"The finished Answer: {stream.__name__}, same arguments, run to its end."
    return run


answer = _finished(stream_answer)
