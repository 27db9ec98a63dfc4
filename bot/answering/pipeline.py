"""Answer a question from the index: retrieve, show the sources, stream a cited answer.

deps = build_deps()
answer(deps, "What did To Lam ask of Hai Phong?")        # -> Answer
for event in stream_answer(deps, Question(text, turns)):
    ...  # [Rewritten,] Sources, Token..., [Retrying, Sources, Token...,] Done
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import ParamSpec

from bot.answering.article import CANDIDATES, ArticlePlan, choose_plans, is_warm, plan_articles
from bot.answering.gate import SentenceGate
from bot.answering.one_language import in_one_language
from bot.answering.pivot import Aligned, sentence_translations, translated_section
from bot.answering.prompts import Message, article_messages, build_messages
from bot.answering.quantity import kinds_asked
from bot.answering.question import Question, check_question, clamp_top_k, clean_history
from bot.answering.records import (
    Answer,
    Checked,
    Checking,
    Citation,
    Claim,
    Done,
    Event,
    Evidence,
    Retrying,
    Rewritten,
    SentenceId,
    Sources,
    Token,
)
from bot.answering.refusal import dont_know, not_supported
from bot.answering.reply import ReplyFilter
from bot.answering.rewrite import rewrite
from bot.answering.support import SentenceCheck, check_support
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
    which may read again)."""

    text: str = ""  # as shown; an LLM failure's message after what came before it
    raw: str = ""  # everything the model wrote
    refused: bool = False
    guard: str = ""
    error: str = ""
    citations: list[Citation] = field(default_factory=list)
    shown: bool = False  # some of it was streamed to the reader (a sentence passed the check)


@dataclass(frozen=True)
class Reading:
    """One way of reading for an answer: an article (or its section) with its prompt prefix,
    its stored translation into PIVOT_LANGUAGE (bot.answering.pivot) the same way, or the
    passages retrieval ranks best, alone, with the short prompt."""

    kind: str  # "article", "translation" or "passages"
    label: str  # the section's label, or "best passages"
    messages: list[Message]
    passages: list[Hit]  # [n] is passages[n - 1], as the model reads them
    context_n: int  # how many of `passages` the model is given
    article_id: str = ""
    originals: list[Hit] = field(default_factory=list)  # a translation's passages as written
    aligned: list[Aligned] = field(default_factory=list)  # its first passages' sentences

    @property
    def shown(self) -> list[Hit]:
        """The passages as the reader sees them and the answer cites them: the originals."""
        return self.originals or self.passages


@dataclass(frozen=True)
class Tried:
    """A reading, the reply it gave, and the citation check of that reply."""

    reading: Reading
    reply: Reply
    checked: Checked
    verdict: str
    check: SentenceCheck  # the judgement the reply's sentences were checked by


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


def translated_reading(deps: Deps, plan: ArticlePlan, question: str, lang: str) -> Reading | None:
    """The article of `plan` read in its stored translation (bot.answering.pivot), the other
    articles' passages after it as they are; None when it is not stored whole, the article is
    in PIVOT_LANGUAGE already, or (ANSWER_MODE=auto) the server has not read its prefix yet."""
    translated = translated_section(deps.index, plan.section, deps.settings.pivot_language)
    if translated is None:
        return None
    section, found = translated
    auto = deps.settings.answer_mode == "auto" and deps.prefix_server is not None
    if auto and not is_warm(deps, section):
        return None
    passages = [*section.passages, *plan.extra]
    return Reading(
        "translation",
        section.label,
        article_messages(section.passages, plan.extra, question, lang, plan.closest),
        passages,
        len(passages),
        section.doc_id,
        originals=plan.passages,
        aligned=found,
    )


def readings(
    found: Retrieved,
    question: str,
    lang: str,
    reread: bool = True,
    translation: Reading | None = None,
) -> list[Reading]:
    """The readings to try, in order, until one gives an answer the check supports: the best
    article; then (`reread`) the best passages alone, the article's `translation`; then the
    next articles. Without article plans, the best passages only. The order is each try's
    gain measured on the dev set's tune half (docs/evaluation.md)."""
    passages = Reading(
        "passages",
        "best passages",
        build_messages(question, found.passages[: found.context_n], lang),
        found.passages,
        found.context_n,
    )
    if not found.plans:
        return [passages] if found.passages else []
    articles = [
        Reading(
            "article",
            plan.section.label,
            plan.messages(question, lang),
            plan.passages,
            len(plan.passages),
            plan.section.doc_id,
        )
        for plan in found.plans
    ]
    again = [passages] if reread and found.passages else []
    if reread and translation is not None:
        again.append(translation)
    return [articles[0], *again, *articles[1:]]


def stream_answer(deps: Deps, asked: Question | str) -> Generator[Event, None, None]:
    """Sources first, then the answer's tokens as they arrive, then the finished Answer (a
    string is a question without conversation or filters). A reply is shown only from its
    first sentence the citation check supports; one it supports nowhere is read again
    differently (Retrying) and, when no reading gives a supported answer, withheld."""
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
        translation = None
        if found.plans and settings.reread and settings.read_translation:
            translation = translated_reading(deps, found.plans[0], standalone, lang)
        plan = readings(found, standalone, lang, settings.reread, translation)
        asks = kinds_asked(standalone) if settings.check_quantity else frozenset()
        tries: list[Tried] = []
        for reading in plan:
            if tries:
                yield Retrying(reading.kind, tries[-1].verdict)
            yield Sources(reading.shown, reading.context_n)
            tried = yield from _try(deps, reading, lang, asks, timings, started)
            tries.append(tried)
            if tried.verdict in ANSWERED or tried.reply.error or tried.reply.guard == "prompt leak":
                break
        if not plan:
            yield Sources(found.passages, found.context_n)
        final = _final(tries, lang)
        if final.verdict in ("refused", "unsupported"):
            yield Token(final.text)
        elif final.verdict in ANSWERED and settings.one_language and final.tried:
            final = _one_language(deps, final, final.tried, lang, [question, standalone], timings)
        final = _on_originals(final)
    timings["total_s"] = time.perf_counter() - started
    timings["tries"] = len(tries)
    kept = final.tried
    kept_reading = kept.reading if kept else None
    read = [h for t in tries for h in t.reading.shown[: t.reading.context_n]]
    yield Done(
        Answer(
            question,
            standalone,
            lang,
            text=final.text,
            refused=final.verdict == "refused",
            verdict=final.verdict,
            draft=final.draft,
            passages=kept_reading.shown if kept_reading else found.passages,
            context_n=kept_reading.context_n if kept_reading else 0,
            citations=final.citations,
            timings=timings,
            error=kept.reply.error if kept else "",
            guard=kept.reply.guard if kept else "",
            raw_text=kept.reply.raw if kept else "",
            mode=kept_reading.kind if kept_reading else "passages",
            article_id=kept_reading.article_id if kept_reading else "",
            articles_tried=[t.reading.label for t in tries],
            tries=[f"{t.reading.kind}: {t.verdict}" for t in tries],
            read=read,
            claims=final.claims,
            retrieved=found.passages,
            article_ranking=rank_articles(found.candidates),
            foreign=final.foreign,
            foreign_left=final.foreign_left,
        )
    )


ANSWERED = ("supported", "partly supported")


def _translations(deps: Deps, reading: Reading, lang: str) -> dict[SentenceId, str]:
    """The stored translations of what `reading` gives the model, for the citation check of an
    answer in PIVOT_LANGUAGE (the article's sentences read in the answer's language)."""
    target = deps.settings.pivot_language
    if not deps.settings.check_translation or reading.kind == "translation" or lang != target:
        return {}
    return sentence_translations(deps.index, reading.passages[: reading.context_n], target)


def _sentence_check(deps: Deps, reading: Reading, lang: str, asks: frozenset[str]) -> SentenceCheck:
    return SentenceCheck(
        deps.embedder,
        reading.passages,
        reading.context_n,
        deps.sentences,
        _translations(deps, reading, lang),
        asks,
    )


def _try(
    deps: Deps,
    reading: Reading,
    lang: str,
    asks: frozenset[str],
    timings: dict[str, float],
    started: float,
) -> Generator[Checking | Token, None, Tried]:
    """One reading: the reply streamed through the gate, then checked (`asks`: the kinds of
    quantity the question asks for, bot.answering.quantity)."""
    check = _sentence_check(deps, reading, lang, asks)
    gate = SentenceGate(check)
    reply = yield from _generate(deps, reading, gate, timings, started)
    if reply.refused or not reply.text:
        return Tried(reading, reply, Checked(reply.text, reply.citations, []), "refused", check)
    checked = check_support(
        deps.embedder,
        reply.text,
        reading.passages,
        reading.context_n,
        reply.citations,
        deps.sentences,
        check.translations,
    )
    worth = [c for c in checked.claims if c.evidence]
    supported = sum(c.supported for c in worth)
    if reply.error:
        verdict = "failed"
    elif not checked.citations:  # nothing in it rests on a passage
        log.warning("reply replaced by the refusal (uncited): %r", reply.raw[:300])
        reply.guard = reply.guard or "uncited"
        verdict = "refused"
    elif not supported:  # nothing in it is found in what the model read
        log.info("reply unsupported by the check (%s): %r", reading.label, reply.raw[:300])
        verdict = "unsupported"
    elif not check.states_asked(checked.claims):
        log.info(
            "reply unsupported: the question asks for %s, its evidence states none (%s): %r",
            "/".join(sorted(asks)),
            reading.label,
            reply.raw[:300],
        )
        verdict = "unsupported"
    else:
        verdict = "supported" if supported == len(worth) else "partly supported"
    if verdict in ANSWERED and not reply.shown:  # the last sentence passed, after the stream
        rest = gate.release()
        if rest:
            _first_shown(timings, started)
            reply.shown = True
            yield Token(rest)
    return Tried(reading, reply, checked, verdict, check)


@dataclass(frozen=True)
class _Final:
    verdict: str
    text: str
    citations: list[Citation]
    claims: list[Claim]
    tried: Tried | None
    draft: str = ""
    foreign: list[str] = field(default_factory=list)
    foreign_left: list[str] = field(default_factory=list)


def _final(tries: list[Tried], lang: str) -> _Final:
    """What the reader gets from the readings tried: the answer the check supports, or a
    failure as it happened, or the first unsupported reply withheld (the passages that came
    closest cited), or the refusal."""
    last = tries[-1] if tries else None
    if last and (last.verdict in ANSWERED or last.verdict == "failed"):
        return _Final(
            last.verdict, last.checked.text, last.checked.citations, last.checked.claims, last
        )
    unsupported = next((t for t in tries if t.verdict == "unsupported"), None)
    if unsupported and not (last and last.reply.guard == "prompt leak"):
        checked = unsupported.checked
        closest = _closest_evidence(checked.claims)
        passages = unsupported.reading.shown
        return _Final(
            "unsupported",
            not_supported(lang, closest),
            [Citation(n, passages[n - 1]) for n in closest],
            checked.claims,
            unsupported,
            draft=checked.text,
        )
    return _Final("refused", dont_know(lang), [], [], last)


def _one_language(
    deps: Deps,
    final: _Final,
    tried: Tried,
    lang: str,
    asked: list[str],
    timings: dict[str, float],
) -> _Final:
    """The answer with the words of the articles' language it carries rewritten
    (bot.answering.one_language); the question's own words are never foreign."""
    reading = tried.reading
    read = [*reading.passages[: reading.context_n], *reading.originals[: reading.context_n]]
    sources = {hit.meta.lang for hit in read}
    keep = {w for text in asked for w in re.findall(r"\w+", text)}
    checked = Checked(final.text, final.citations, final.claims)
    fixed = in_one_language(
        deps.llm,
        checked,
        lang,
        sources,
        keep,
        tried.check.supports,
        timings,
        tried.check.translation_of,
    )
    return replace(
        final,
        text=fixed.checked.text,
        claims=fixed.checked.claims,
        foreign=fixed.found,
        foreign_left=fixed.left,
    )


def _on_originals(final: _Final) -> _Final:
    """A translation's answer as the reader gets it: its citations and the evidence of its
    sentences on the original passages and sentences (the translated ones point at them)."""
    reading = final.tried.reading if final.tried else None
    if reading is None or not reading.aligned:
        return final
    originals, aligned = reading.originals, reading.aligned

    def original(e: Evidence) -> Evidence:
        if e.n > len(aligned):  # another article's passage, read as it is
            return e
        start, end = aligned[e.n - 1].original_span(e.start, e.end)
        return replace(e, start=start, end=end)

    return replace(
        final,
        citations=[Citation(c.n, originals[c.n - 1]) for c in final.citations],
        claims=[replace(c, evidence=[original(e) for e in c.evidence]) for c in final.claims],
    )


def _closest_evidence(claims: list[Claim], most: int = 2) -> list[int]:
    """The passages of the best-scored evidence sentences of an unsupported reply."""
    found = sorted((e.score, e.n) for c in claims for e in c.evidence)[::-1]
    return list(dict.fromkeys(n for _, n in found))[:most]


def _first_shown(timings: dict[str, float], started: float) -> None:
    timings.setdefault("first_token_s", time.perf_counter() - started)


def _generate(
    deps: Deps,
    reading: Reading,
    gate: SentenceGate,
    timings: dict[str, float],
    started: float,
) -> Generator[Checking | Token, None, Reply]:
    """Stream the model's reply through the checks of bot.answering.reply and the gate; return
    it."""
    messages, passages, context_n = reading.messages, reading.passages, reading.context_n
    reply = ReplyFilter(
        context_n,
        messages[0]["content"],
        messages[1]["content"],
        need_citation=reading.kind == "passages",  # an article's reply: the check decides
    )
    first: float | None = None
    tokens = 0
    error = ""
    shown = False
    log.info("asking %s, %d passages to read (%s)", deps.llm.where, context_n, reading.label)
    try:
        for piece in deps.llm.stream(messages, deps.settings.llm_max_tokens):
            if first is None:
                first = time.perf_counter()
                timings.setdefault("model_first_token_s", first - started)
                yield Checking()
            tokens += 1
            text = gate.feed(reply.feed(piece))
            if reply.done:
                break
            if text:
                _first_shown(timings, started)
                shown = True
                yield Token(text)
    except BotError as exc:
        error = str(exc)
    verdict = reply.finish(failed=bool(error))
    if verdict.guard:
        log.warning("reply replaced by the refusal (%s): %r", verdict.guard, reply.raw[:300])
    text = ""
    if not verdict.refused:
        tail = gate.feed(verdict.tail) if verdict.tail else ""
        if error and not gate.open:  # what came before a failure is shown, checked or not
            tail = gate.release()
        if tail:
            _first_shown(timings, started)
            shown = True
            yield Token(tail)
        text = verdict.text
        if error:
            text = (text + "\n\n" if text else "") + error
    timings["generate_s"] = timings.get("generate_s", 0.0) + (
        time.perf_counter() - (first or time.perf_counter())
    )
    timings["tokens"] = timings.get("tokens", 0) + tokens
    if first is not None and tokens > 1 and timings["generate_s"] > 0:
        timings["tokens_per_s"] = (timings["tokens"] - 1) / timings["generate_s"]
    return Reply(
        text,
        reply.raw,
        verdict.refused,
        verdict.guard,
        error,
        [Citation(n, passages[n - 1]) for n in verdict.cited],
        shown,
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
