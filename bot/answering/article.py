"""Article mode: the model reads the best article whole (or its best section), numbered in
reading order, with the question last, so that the article's prompt prefix is computed once
and reused for every question about it (bot.models.llm_server).

`plan_articles` says which articles to try, best first; `is_warm` whether the embedded
server holds an article's prefix already.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bot.answering.prompts import Message, answer_prefix, article_messages, article_prefix
from bot.deps import Deps
from bot.errors import BotError
from bot.models.embeddings import cosines
from bot.models.llm import llm_kind
from bot.models.prefix_store import SENTINEL
from bot.models.vector_cache import VectorCache
from bot.retrieval.articles import Section, article_passages, best_section, rank_articles, sections
from bot.retrieval.records import Hit

log = logging.getLogger(__name__)
CANDIDATES = 30  # passages retrieved to choose the article from
EXCERPT_CHARS = 400  # of a passage from another article, read after the article (~100 tokens)


@dataclass
class ArticlePlan:
    section: Section
    extra: list[Hit] = field(default_factory=list)  # other articles' passages, numbered after
    closest: list[int] = field(default_factory=list)  # numbers retrieval ranks best, best first

    @property
    def passages(self) -> list[Hit]:
        """Everything the model reads, as it numbers it: [n] is passages[n - 1]."""
        return [*self.section.passages, *self.extra]

    def messages(self, question: str, lang: str) -> list[Message]:
        return article_messages(self.section.passages, self.extra, question, lang, self.closest)


def prefix_messages(section: Section) -> list[Message]:
    """The article's prompt prefix as POST /newsqa/prefix takes it (SENTINEL marks its end)."""
    return _marked(article_prefix(section.passages))


def answer_prefix_messages(lang: str) -> list[Message]:
    """The passage prompt's prefix for answers in `lang`, as POST /newsqa/prefix takes it."""
    return _marked(answer_prefix(lang))


def answer_prefix_label(lang: str) -> str:
    """Names the stored state of answer_prefix_messages(lang), changed with the prompt."""
    text = "".join(m["content"] for m in answer_prefix(lang))
    return f"answer-prompt:{lang}:{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"


def _marked(messages: list[Message]) -> list[Message]:
    system, user = messages
    return [system, {"role": "user", "content": user["content"] + SENTINEL}]


def article_sections(deps: Deps, doc_id: str) -> list[Section]:
    return sections(article_passages(deps.index, doc_id), deps.settings.article_tokens)


def plan_articles(deps: Deps, candidates: list[Hit], lang: str, question: str) -> list[ArticlePlan]:
    """The articles to read, best first (at most ARTICLE_TRIES), each with the passages of
    other articles that retrieval ranks among the best three: another article the question
    may span, or the translation of the chosen one in the reader's language (each cut to the
    sentences closest to `question`: the model reads them for every question anew)."""
    plans = []
    query = functools.cache(lambda: deps.embedder.embed_query(question))  # once, if needed
    for doc_id in rank_articles(candidates)[: deps.settings.article_tries]:
        parts = article_sections(deps, doc_id)
        if not parts:
            continue
        section = best_section(parts, candidates)
        inside = {p.id for p in section.passages}
        extra = [h for h in _others(candidates, section, lang) if h.id not in inside]
        extra = [excerpt(deps, h, query) for h in extra[: deps.settings.extra_passages]]
        plan = ArticlePlan(section, extra)
        plan.closest = _closest(plan.passages, candidates)
        plans.append(plan)
    return plans


def excerpt(
    deps: Deps, hit: Hit, query: Callable[[], np.ndarray], chars: int = EXCERPT_CHARS
) -> Hit:
    """`hit` cut to its sentences closest to the question (`query()` gives its e5 vector, asked
    for only when the passage is cut), the closest first until `chars` characters are taken
    (always one), kept in reading order and joined by " … ". The model reads such a passage
    anew with every question: a whole 300-token passage after the article costs ~8 s before
    the first word (docs/benchmarks.md)."""
    spans = hit.sentences()
    if len(hit.text) <= chars or len(spans) < 2:
        return hit
    texts = [hit.text[s:e] for s, e in spans]
    vectors = (deps.sentences or VectorCache(deps.embedder.embed_passages))(texts)
    keep: list[int] = []
    for i in np.argsort(-cosines(query(), vectors)[0], kind="stable"):
        if keep and sum(len(texts[k]) for k in keep) + len(texts[i]) > chars:
            continue
        keep.append(int(i))
    return dataclasses.replace(hit, text=" … ".join(texts[i] for i in sorted(keep)))


def _closest(passages: list[Hit], candidates: list[Hit], most: int = 3) -> list[int]:
    """The numbers of the passages retrieval ranked best (a translation counts as its twin)."""
    rank: dict[str, int] = {}
    for r, hit in enumerate(candidates):
        for h in [hit, *hit.alternatives]:
            rank.setdefault(h.id, r)
    found = sorted((rank[p.id], n) for n, p in enumerate(passages, 1) if p.id in rank)
    return [n for _, n in found[:most]]


def _others(candidates: list[Hit], section: Section, lang: str) -> list[Hit]:
    """Passages of other articles that matter for this question, as retrieval shows: the
    chosen article's translation in the reader's language (its passage among the best three),
    and the runner-up when it is another article's and one of the two searches put it first."""
    doc_id = section.doc_id
    story = section.passages[0].meta.story_id
    found: list[Hit] = []
    if section.passages[0].meta.lang != lang:
        for hit in candidates[:3]:
            found += [
                h
                for h in [hit, *hit.alternatives]
                if h.doc_id != doc_id and h.meta.lang == lang and story and h.meta.story_id == story
            ]
    if len(candidates) > 1:
        runner = candidates[1]
        translation = bool(story) and runner.meta.story_id == story
        if (
            runner.doc_id != doc_id
            and not translation
            and 1 in (runner.dense_rank, runner.lexical_rank)
        ):
            found.append(runner)
    return found


def is_warm(deps: Deps, section: Section) -> bool:
    """Whether the embedded server holds this section's prefix computed (False when it cannot
    say: then the question is answered from passages rather than wait for a cold read)."""
    if deps.prefix_server is None:
        return False
    try:
        return deps.prefix_server.prefix(prefix_messages(section), section.label).done
    except BotError as exc:
        log.warning("cannot ask the LLM server about %s: %s", section.label, exc)
        return False


def choose_plans(deps: Deps, candidates: list[Hit], lang: str, question: str) -> list[ArticlePlan]:
    """The article plans to answer from under ANSWER_MODE; empty: answer from passages."""
    mode = deps.settings.answer_mode
    # a server at LLM_BASE_URL (vLLM) reuses prefixes by itself; the embedded one on request
    remote = deps.prefix_server is None and llm_kind(deps.settings) == "openai"
    if mode == "passages" or not candidates:
        return []
    if mode == "auto" and deps.prefix_server is None and not remote:
        return []
    plans = plan_articles(deps, candidates, lang, question)
    if mode == "article" or remote:
        return plans
    if not plans or not is_warm(deps, plans[0].section):  # the best one is not read yet
        return []
    return [plans[0], *(p for p in plans[1:] if is_warm(deps, p.section))]
