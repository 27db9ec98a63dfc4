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
from dataclasses import dataclass, field
from typing import ParamSpec

from bot.answering.article import CANDIDATES, ArticlePlan, choose_plans, plan_articles
from bot.answering.prompts import Message, build_messages
from bot.answering.question import Question, check_question, clamp_top_k, clean_history
from bot.answering.records import Answer, Citation, Claim, Done, Event, Rewritten, Sources, Token
from bot.answering.refusal import dont_know
from bot.answering.reply import ReplyFilter
from bot.answering.rewrite import rewrite
from bot.answering.support import check_support
from bot.deps import Deps
from bot.errors import BotError
from bot.retrieval.articles import rank_articles
from bot.retrieval.context import context_size
from bot.retrieval.records import Filters, Hit
from bot.text.language import detect_question_language

log = logging.getLogger(__name__)
P = ParamSpec("P")


@dataclass
class Reply:
    """What the model wrote, as bot.answering.reply judged it (a refusal is left to the caller,
    which may try another article)."""

    text: str = ""  # as shown; an LLM failure's message after what came before it
    raw: str = ""  # everything the model wrote
    refused: bool = False
    guard: str = ""
    error: str = ""
    citations: list[Citation] = field(default_factory=list)


@dataclass
class Reading:
    """What the model was given to read, over every article tried, and its last reply."""

    mode: str = "passages"
    passages: list[Hit] = field(default_factory=list)  # the last read, [n] is passages[n - 1]
    context_n: int = 0
    read: list[Hit] = field(default_factory=list)
    article_id: str = ""
    articles_tried: list[str] = field(default_factory=list)
    reply: Reply = field(default_factory=Reply)


@dataclass(frozen=True)
class Retrieved:
    """Retrieval's step: the candidates, best first, and what the model is to read of them."""

    candidates: list[Hit]  # max(k, CANDIDATES) of them
    plans: list[ArticlePlan]  # the articles to read, best first; empty: the passages
    passages: list[Hit]  # the best k
    context_n: int  # how many of `passages` the model reads in passage mode
    seconds: float


def retrieve(
    deps: Deps,
    question: str,
    lang: str,
    k: int,
    filters: Filters | None = None,
    read_only: bool = True,
) -> Retrieved:
    """Search, and choose what the model reads (bot.answering.article.choose_plans). With
    `read_only=False` (the retrieval-only evaluation, which has no model) articles are planned
    as if the server had read them all, under any ANSWER_MODE but `passages`."""
    settings = deps.settings
    candidates, seconds = deps.retriever.search(question, max(k, CANDIDATES), filters)
    if read_only:
        plans = choose_plans(deps, candidates, lang, question)
    elif settings.answer_mode != "passages" and candidates:
        plans = plan_articles(deps, candidates, lang, question)
    else:
        plans = []
    passages = candidates[:k]
    context_n = context_size(passages, settings.context_passages, settings.context_tokens)
    return Retrieved(candidates, plans, passages, context_n, seconds)


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
    lang = detect_question_language(
        question, detect_question_language(before[-1]) if before else "en"
    )
    timings: dict[str, float] = {}
    k = clamp_top_k(asked.top_k, settings.top_k)
    standalone = question
    with deps.activity.asking():  # the background warm-up of articles waits meanwhile
        if turns:
            standalone = rewrite(deps.llm, question, turns, timings)
            yield Rewritten(standalone)
        found = retrieve(deps, standalone, lang, k, asked.filters)
        timings["retrieve_s"] = found.seconds
        timings["sources_s"] = time.perf_counter() - started
        if found.plans:
            reading = yield from _from_articles(
                deps, found.plans, standalone, lang, timings, started
            )
        else:
            reading = yield from _from_passages(deps, found, standalone, lang, timings, started)
        reply = reading.reply
        text, refused, guard, citations = reply.text, reply.refused, reply.guard, reply.citations
        claims: list[Claim] = []
        if not reading.passages:
            text, refused = dont_know(lang), True
        elif refused:
            text = dont_know(lang)
            yield Token(text)
        elif text:
            checked = check_support(
                deps.embedder, text, reading.passages, reading.context_n, citations, deps.sentences
            )
            text, citations, claims = checked.text, checked.citations, checked.claims
            if not reply.error and not citations:  # nothing in it rests on a passage
                log.warning("reply replaced by the refusal (uncited): %r", reply.raw[:300])
                text, refused, guard = dont_know(lang), True, "uncited"
                yield Token(text)
    timings["total_s"] = time.perf_counter() - started
    yield Done(
        Answer(
            question,
            standalone,
            lang,
            text=text,
            refused=refused,
            passages=reading.passages,
            context_n=reading.context_n,
            citations=citations,
            timings=timings,
            error=reply.error,
            guard=guard,
            raw_text=reply.raw,
            mode=reading.mode,
            article_id=reading.article_id,
            articles_tried=reading.articles_tried,
            read=reading.read,
            claims=claims,
            retrieved=found.passages,
            article_ranking=rank_articles(found.candidates),
        )
    )


def _from_passages(
    deps: Deps,
    found: Retrieved,
    question: str,
    lang: str,
    timings: dict[str, float],
    started: float,
) -> Generator[Sources | Token, None, Reading]:
    """Read the passages retrieval ranks best, as many as the context takes."""
    passages, context_n = found.passages, found.context_n
    reading = Reading(passages=passages, context_n=context_n)
    yield Sources(passages, context_n)
    if passages:
        reading.read = passages[:context_n]
        messages = build_messages(question, reading.read, lang)
        reading.reply = yield from _generate(
            deps, messages, passages, context_n, True, timings, started
        )
    return reading


def _from_articles(
    deps: Deps,
    plans: list[ArticlePlan],
    question: str,
    lang: str,
    timings: dict[str, float],
    started: float,
) -> Generator[Sources | Token, None, Reading]:
    """Read the best article; while the model finds no answer in it, the next one."""
    reading = Reading(mode="article")
    for plan in plans:
        passages = plan.passages
        reading.passages, reading.context_n = passages, len(passages)
        reading.article_id = plan.section.doc_id
        reading.articles_tried.append(plan.section.label)
        reading.read += passages
        yield Sources(passages, len(passages))
        messages = plan.messages(question, lang)
        reply = yield from _generate(
            deps, messages, passages, len(passages), False, timings, started
        )
        reading.reply = reply
        if not reply.refused or reply.error or reply.guard == "prompt leak":
            break
    return reading


def _generate(
    deps: Deps,
    messages: list[Message],
    passages: list[Hit],
    context_n: int,
    need_citation: bool,
    timings: dict[str, float],
    started: float,
) -> Generator[Token, None, Reply]:
    """Stream the model's reply through the checks of bot.answering.reply; return it."""
    reply = ReplyFilter(
        context_n, messages[0]["content"], messages[1]["content"], need_citation=need_citation
    )
    first: float | None = None
    tokens = 0
    error = ""
    log.info("asking %s, %d passages to read", deps.llm.where, context_n)
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
        error = str(exc)
    verdict = reply.finish(failed=bool(error))
    if verdict.guard:
        log.warning("reply replaced by the refusal (%s): %r", verdict.guard, reply.raw[:300])
    text = ""
    if not verdict.refused:
        if verdict.tail:
            yield Token(verdict.tail)
        text = verdict.text
        if error:
            text = (text + "\n\n" if text else "") + error
    timings["generate_s"] = time.perf_counter() - (first or time.perf_counter())
    timings["tokens"] = tokens
    if first is not None and tokens > 1 and timings["generate_s"] > 0:
        timings["tokens_per_s"] = (tokens - 1) / timings["generate_s"]
    return Reply(
        text,
        reply.raw,
        verdict.refused,
        verdict.guard,
        error,
        [Citation(n, passages[n - 1]) for n in verdict.cited],
    )


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
