"""Prompt files (`prompts/*.txt`, installed as package data), loaded by name and rendered
strictly, and the answer prompt assembled from them."""

from __future__ import annotations

import string
from collections.abc import Sequence
from functools import cache
from importlib import resources

from bot.answering import guard
from bot.answering.refusal import REFUSAL_MARKER
from bot.retrieval.records import Hit
from bot.text.language import language_name

Message = dict[str, str]
_QUESTION_LANGUAGE = "the language of the question"  # for a language the bot cannot name


@cache
def load(name: str) -> str:
    return (resources.files("prompts") / f"{name}.txt").read_text(encoding="utf-8")


def render(name: str, **values: object) -> str:
    """Fill `prompts/<name>.txt`; a missing or unexpected variable is an error, not a blank."""
    template = load(name)
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    missing, extra = fields - values.keys(), values.keys() - fields
    if missing or extra:
        raise KeyError(f"prompt {name!r}: missing {sorted(missing)}, unexpected {sorted(extra)}")
    return template.format(**values).strip()


def _source(n: int, hit: Hit) -> str:
    """Passage [n] as the model reads it (bot.answering.guard), headed by its title and language."""
    language = language_name(hit.meta.lang, _QUESTION_LANGUAGE)
    return render(
        "source", n=n, title=hit.meta.title, language=language, text=guard.for_model(hit.text)
    )


def build_messages(question: str, passages: list[Hit], lang: str) -> list[Message]:
    """The answer prompt: fixed instructions, then the numbered passages (as the model may read
    them: bot.answering.guard) and the question, to be answered in `lang`."""
    name = language_name(lang, _QUESTION_LANGUAGE)
    sources = "\n\n".join(_source(n, h) for n, h in enumerate(passages, 1))
    return [
        {
            "role": "system",
            "content": render("answer_system", language=name, refusal_marker=REFUSAL_MARKER),
        },
        {
            "role": "user",
            "content": render(
                "answer_user",
                sources=sources,
                question=question,
                language=name,
                refusal_marker=REFUSAL_MARKER,
            ),
        },
    ]


def answer_prefix(lang: str) -> list[Message]:
    """The part of build_messages' prompt that depends on the answer's language alone: the
    instructions and the opening of the user's message, up to the first passage. The model's
    state after it is computed once per language and reused (bot.warmup)."""
    system, _ = build_messages("", [], lang)
    opening = load("answer_user").split("{sources}", 1)[0]
    return [system, {"role": "user", "content": opening}]


def article_prefix(passages: list[Hit]) -> list[Message]:
    """The part of the article prompt that does not depend on the question: the constant
    instructions, then the article's passages numbered in reading order. The model's state
    after it is computed once per article and reused (bot.models.llm_server)."""
    meta = passages[0].meta
    numbered = "\n\n".join(f"[{n}] {guard.for_model(h.text)}" for n, h in enumerate(passages, 1))
    article = render(
        "article",
        title=meta.title or meta.doc_id,
        passages=numbered,
        language=language_name(meta.lang, _QUESTION_LANGUAGE),
        date=f", {meta.date}" if meta.date else "",
    )
    return [
        {"role": "system", "content": render("article_system", refusal_marker=REFUSAL_MARKER)},
        {"role": "user", "content": article + "\n\n"},
    ]


def article_messages(
    passages: list[Hit], extra: list[Hit], question: str, lang: str, closest: Sequence[int] = ()
) -> list[Message]:
    """The article prompt: article_prefix, then everything that depends on the question:
    passages of other articles (numbered after the article's), the question, the numbers of the
    passages retrieval ranks closest to it, and the answer's language."""
    first = len(passages) + 1
    more = "".join(_source(n, h) + "\n\n" for n, h in enumerate(extra, first))
    if more:
        more = "More passages, from other articles:\n" + more
    near = ", ".join(f"[{n}]" for n in closest) if closest else f"[1] to [{first - 1}]"
    tail = render(
        "article_question",
        extra=more,
        question=question,
        closest=near,
        language=language_name(lang, _QUESTION_LANGUAGE),
        refusal_marker=REFUSAL_MARKER,
    )
    system, user = article_prefix(passages)
    return [system, {"role": "user", "content": user["content"] + tail}]
