"""The rendered prompts are pinned: a wording change shows up as a diff of tests/snapshots/.

To accept a deliberate change: UPDATE_SNAPSHOTS=1 pytest tests/test_prompts.py, then review
the diff of tests/snapshots/ like any other change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.answering.article import (
    ArticlePlan,
    answer_prefix_label,
    answer_prefix_messages,
    prefix_messages,
)
from bot.answering.one_language import rewrite_messages, terms_messages
from bot.answering.pivot import translation_messages
from bot.answering.prompts import article_messages, build_messages, render
from bot.models.fake_llm import purpose
from bot.models.prefix_store import SENTINEL
from bot.retrieval.articles import Section
from bot.retrieval.records import Hit, PassageMeta
from bot.text.foreign import foreign_terms
from bot.text.language import NAMES
from bot.warmup import answer_languages

SNAPSHOTS = Path(__file__).parent / "snapshots"

HITS = [
    Hit(
        "a:1:0000",
        "Le camarade Ho Duc Phoc, vice-Premier ministre, a pris la parole.",
        PassageMeta(title="Construire Hai Phong", lang="fr"),
        0.1,
    ),
    Hit(
        "b:1:0000",
        "Hai Phong strives to become a highly developed city.",
        PassageMeta(title="Building Hai Phong", lang="en"),
        0.1,
    ),
]


def _check(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_answer_prompt_is_pinned() -> None:
    messages = build_messages("Which Deputy Prime Minister attended?", HITS, "en")
    assert [m["role"] for m in messages] == ["system", "user"]
    _check("answer_system_en.txt", messages[0]["content"])
    _check("answer_user_en.txt", messages[1]["content"])


def test_article_prompt_is_pinned() -> None:
    """The default prompt: the article in reading order, then a passage of another article,
    the question and the passages retrieval ranks closest to it."""
    messages = article_messages(
        HITS[:1], HITS[1:], "Which Deputy Prime Minister attended?", "en", [1, 2]
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    _check("article_system.txt", messages[0]["content"])
    _check("article_user_en.txt", messages[1]["content"])


def test_the_article_prefix_is_the_start_of_every_question_about_it() -> None:
    plan = ArticlePlan(Section("a", "1", 0, 1, HITS[:1]), HITS[1:])
    prefix = prefix_messages(plan.section)
    asked = plan.messages("Which Deputy Prime Minister attended?", "en")
    assert prefix[0] == asked[0]
    assert prefix[1]["content"].endswith(SENTINEL)
    assert asked[1]["content"].startswith(prefix[1]["content"].removesuffix(SENTINEL))


def test_the_passage_prompt_starts_with_its_opening_in_the_answer_s_language() -> None:
    for lang in ("en", "th", "xx"):
        prefix = answer_prefix_messages(lang)
        asked = build_messages("Which Deputy Prime Minister attended?", HITS, lang)
        assert prefix[0] == asked[0]
        assert prefix[1]["content"].endswith(SENTINEL)
        assert asked[1]["content"].startswith(prefix[1]["content"].removesuffix(SENTINEL))
        assert HITS[0].text not in prefix[1]["content"]  # the passages come after it
    labels = {answer_prefix_label(lang) for lang in ("en", "th", "xx")}
    assert len(labels) == 3  # one stored state per language


def test_the_passage_prompt_is_prepared_for_the_articles_languages_first() -> None:
    parts = [Section("a", "1", 0, 1, [h]) for h in HITS]
    languages = answer_languages(parts)
    first = list(dict.fromkeys(h.meta.lang for h in HITS))
    assert languages[: len(first)] == first
    assert "en" in languages and set(languages) == set(NAMES)
    assert len(languages) == len(set(languages))


def test_the_fake_model_knows_which_prompt_it_reads() -> None:
    history = "user: Who spoke?\nassistant: Ho Duc Phoc [1]."
    rewrite = [{"role": "user", "content": render("rewrite", history=history, question="And?")}]
    assert purpose(build_messages("Who spoke?", HITS, "en")) == "answer"
    assert purpose(article_messages(HITS[:1], HITS[1:], "Who spoke?", "de", [1])) == "article"
    assert purpose(rewrite) == "rewrite"
    assert purpose(translation_messages("Le camarade a parlé.", "fr", "en")) == "translate"
    assert purpose([{"role": "user", "content": "Something else entirely."}]) == ""


def test_answer_prompt_names_the_question_language() -> None:
    system = build_messages("Wer nahm teil?", HITS, "de")[0]["content"]
    assert "Answer in German" in system


def test_rewrite_prompt_is_pinned() -> None:
    history = (
        "user: Who concluded the July 15 conference?\n"
        "assistant: Mr. Tran Luu Quang concluded it [1]."
    )
    _check("rewrite.txt", render("rewrite", history=history, question="What did he say?"))


def test_translation_prompt_is_pinned() -> None:
    [message] = translation_messages("Le camarade Ho Duc Phoc a pris la parole.", "fr", "en")
    _check("translate_fr_en.txt", message["content"])


def test_the_prompts_that_put_an_answer_in_one_language_are_pinned() -> None:
    sentence = "The line ferroviaire will be 400 km long [2]."
    terms = foreign_terms(sentence, "en", {"fr"})
    _check("translate_terms_fr_en.txt", terms_messages(sentence, terms, "en")[0]["content"])
    _check("one_language_fr_en.txt", rewrite_messages(sentence, terms, "en")[0]["content"])
    assert purpose(terms_messages(sentence, terms, "en")) == "translate_terms"
    assert purpose(rewrite_messages(sentence, terms, "en")) == "one_language"


def test_a_missing_variable_fails_loudly() -> None:
    with pytest.raises(KeyError, match="missing \\['question'\\]"):
        render("rewrite", history="")
