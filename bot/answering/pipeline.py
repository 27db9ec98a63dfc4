"""Answer a question from the index: retrieve, show the sources, stream a cited answer.

deps = build_deps()
answer(deps, "What did To Lam ask of Hai Phong?")        # -> Answer
for event in stream_answer(deps, Question(text, turns)):  # [Rewritten,] Sources, Token..., Done
    ...
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator
from typing import ParamSpec

from bot.answering.article import CANDIDATES, ArticlePlan, activity, choose_plans
from bot.answering.prompts import Message, build_messages
from bot.answering.question import Question, check_question, clamp_top_k, clean_history
from bot.answering.records import Answer, Citation, Done, Event, Rewritten, Sources, Token
from bot.answering.refusal import dont_know
from bot.answering.reply import ReplyFilter
from bot.answering.rewrite import rewrite
from bot.answering.support import check_support
from bot.deps import Deps
from bot.errors import BotError
from bot.retrieval.articles import rank_articles
from bot.retrieval.context import context_size
from bot.text.language import detect_question_language

log = logging.getLogger(__name__)
P = ParamSpec("P")


def stream_answer(deps: Deps, asked: Question | str) -> Generator[Event, None, None]:
    """Sources first, then the answer's tokens as they arrive, then the finished Answer (a
    string is a question without conversation or filters)."""
    settings = deps.settings
    started = time.perf_counter()
    if isinstance(asked, str):
        asked = Question(asked)
    question = check_question(asked.text, settings.max_question_chars)
    turns = clean_history(asked.history)
    before = [t["content"] for t in turns if t.get("role") == "user"]
    previous_lang = detect_question_language(before[-1]) if before else "en"
    result = Answer(question, question, detect_question_language(question, previous_lang))
    timings = result.timings
    k = clamp_top_k(asked.top_k, settings.top_k)
    with activity.asking():  # the background warm-up of articles waits meanwhile
        if turns:
            result.standalone_question = rewrite(deps.llm, question, turns, timings)
            yield Rewritten(result.standalone_question)
        candidates, timings["retrieve_s"] = deps.retriever.search(
            result.standalone_question, max(k, CANDIDATES), asked.filters
        )
        result.retrieved, result.article_ranking = candidates[:k], rank_articles(candidates)
        plans = choose_plans(deps, candidates, result.lang, result.standalone_question)
        timings["sources_s"] = time.perf_counter() - started
        if plans:
            yield from _from_articles(deps, result, plans, started)
        else:
            result.passages = candidates[:k]
            result.context_n = context_size(
                result.passages, settings.context_passages, settings.context_tokens
            )
            yield Sources(result.passages, result.context_n)
            if result.passages:
                read = result.read = result.passages[: result.context_n]
                messages = build_messages(result.standalone_question, read, result.lang)
                yield from _generate(deps, result, messages, started)
        if not result.passages:
            result.text, result.refused = dont_know(result.lang), True
        elif result.refused:
            result.text = dont_know(result.lang)
            yield Token(result.text)
        elif result.text:
            check_support(deps.embedder, result, deps.sentences)
            if not result.error and not result.citations:  # nothing in it rests on a passage
                log.warning("reply replaced by the refusal (uncited): %r", result.raw_text[:300])
                result.text, result.refused, result.guard = dont_know(result.lang), True, "uncited"
                yield Token(result.text)
    timings["total_s"] = time.perf_counter() - started
    yield Done(result)


def _from_articles(
    deps: Deps, result: Answer, plans: list[ArticlePlan], started: float
) -> Iterator[Sources | Token]:
    """Read the best article; while the model finds no answer in it, the next one."""
    for plan in plans:
        result.mode, result.article_id = "article", plan.section.doc_id
        result.passages = plan.passages
        result.context_n = len(result.passages)
        result.articles_tried.append(plan.section.label)
        result.read += plan.passages
        yield Sources(result.passages, result.context_n)
        yield from _generate(
            deps, result, plan.messages(result.standalone_question, result.lang), started
        )
        if not result.refused or result.error or result.guard == "prompt leak":
            return


def _generate(
    deps: Deps, result: Answer, messages: list[Message], started: float
) -> Iterator[Token]:
    """Stream the model's reply through the checks of bot.answering.reply into `result`
    (a refusal is left to the caller, which may try another article)."""
    timings = result.timings
    reply = ReplyFilter(
        result.context_n,
        messages[0]["content"],
        messages[1]["content"],
        need_citation=result.mode == "passages",
    )
    first: float | None = None
    tokens = 0
    log.info("asking %s, %d passages to read", deps.llm.where, result.context_n)
    result.error = ""
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
    result.refused = verdict.refused
    result.text = ""
    if not verdict.refused:
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
