"""Answers in one language: words of the articles' language inside an answer are found
(bot.text.foreign) and translated or rewritten (bot.answering.one_language), with a scripted
model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.answering.one_language import in_one_language
from bot.answering.pipeline import answer
from bot.answering.question import Question
from bot.answering.records import Checked
from bot.answering.support import _claims
from bot.deps import build_deps
from bot.models.fake_llm import FakeChat, purpose
from bot.retrieval.records import Filters
from bot.settings import Settings
from bot.text.foreign import foreign_terms
from bot.text.language import detect_language
from bot.text.sentences import split_sentences
from eval.one_language import report

ROOT = Path(__file__).resolve().parent.parent


def _terms(text: str, lang: str, *sources: str) -> list[str]:
    return [t.text for t in foreign_terms(text, lang, sources)]


@pytest.mark.parametrize(
    ("sentence", "source", "found"),
    [
        ("The line ferroviaire between Hai Phong and Lao Cai [2].", "fr", ["ferroviaire"]),
        ("Le Tien Chau is the Parteisekretär of Hai Phong [1].", "de", ["Parteisekretär"]),
        (
            "- Die Entwicklung der Industriezonen und des Hafens [3]",
            "de",
            ["Die Entwicklung der Industriezonen und des Hafens"],
        ),
        ("The city wants to be a ville intelligente by 2030 [1].", "fr", ["ville intelligente"]),
        ("The chemin de fer will reach the port.", "fr", ["chemin de fer"]),
        (
            "It improves its Geschäftsumfelds and Befreiungstages.",
            "de",
            ["Geschäftsumfelds", "Befreiungstages"],
        ),
        ("Hai Phong, or ไฮฟอง, is a port city.", "th", ["ไฮฟอง"]),
        ("It needs a 革新的 solution now [4].", "fr", ["革新的"]),
        ("It goes to the Assemblée nationale for approval [7].", "fr", ["Assemblée nationale"]),
        (  # a clause of French whose words English shares but one ("aux")
            "A line to Hanoi, reliant le port maritime de Hai Phong aux zones de Dinh Vu [8].",
            "fr",
            ["reliant le port maritime de Hai Phong aux zones de Dinh Vu"],
        ),
    ],
)
def test_words_of_the_articles_language_are_found_in_an_english_answer(
    sentence: str, source: str, found: list[str]
) -> None:
    assert _terms(sentence, "en", source) == found


def test_names_and_words_english_shares_are_not_foreign() -> None:
    names = (
        "General Secretary To Lam and Nguyen Van Tung met at the Lach Huyen port, near Cat Bi "
        "airport, with Tô Lâm, Lê Tiến Châu and the Transformation programme of the zone."
    )
    assert _terms(names, "en", "fr", "de", "vi", "th") == []
    assert _terms("Le port de Hai Phong est le plus grand du Nord [1].", "fr", "en") == []


def test_no_word_of_the_shipped_english_articles_is_foreign_to_english() -> None:
    """The detector's false alarms, measured on real English news: none."""
    checked = 0
    for path in sorted((ROOT / "data" / "articles").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        if detect_language(text) != "en":
            continue
        for a, b in split_sentences(text):
            assert _terms(text[a:b], "en", "fr", "de") == [], text[a:b]
            checked += 1
    assert checked > 50


def test_the_words_of_the_question_are_never_foreign() -> None:
    asked = "What is the Parteisekretär's name?"
    keep = set(asked.replace("'", " ").replace("?", " ").split())
    assert [
        t.text for t in foreign_terms("The Parteisekretär is Le Tien Chau.", "en", {"de"}, keep)
    ] == []


def _repaired(
    text: str, *replies: str, supported: bool = True, stored: str = ""
) -> tuple[str, list[str], FakeChat]:
    llm = FakeChat(replies)
    claims = _claims(text)
    for claim in claims:
        claim.supported = True  # as the citation check found
    fixed = in_one_language(
        llm,
        Checked(text, [], claims),
        "en",
        {"fr", "de"},
        set(),
        lambda s: supported,
        {},
        lambda claim: stored,
    )
    for claim in fixed.checked.claims:  # the claims follow the new text
        assert fixed.checked.text[claim.start : claim.end].strip().startswith(claim.text[:10])
    return fixed.checked.text, fixed.left, llm


def test_a_term_is_translated_in_place_a_translation_with_its_neighbour_replacing_both() -> None:
    text = "It has 2 lines [1]. The line ferroviaire will be 400 km long [2]. It opens soon [2]."
    fixed, left, llm = _repaired(text, "1. railway line")
    assert (
        fixed == "It has 2 lines [1]. The railway line will be 400 km long [2]. It opens soon [2]."
    )
    assert left == [] and [purpose(c) for c in llm.calls] == ["translate_terms"]


def test_when_the_translation_leaves_foreign_words_the_sentence_is_rewritten() -> None:
    text = "The plan:\n- Die Entwicklung der Industriezonen und des Hafens [3]\n- The airport [2]"
    fixed, left, llm = _repaired(
        text,
        "1. Die Entwicklung of industrial zones",
        "The development of industrial zones and the port [3]",
    )
    assert (
        fixed
        == "The plan:\n- The development of industrial zones and the port [3]\n- The airport [2]"
    )
    assert left == [] and [purpose(c) for c in llm.calls] == ["translate_terms", "one_language"]


@pytest.mark.parametrize(
    "rewrite",
    [
        "The railway line will be 300 km long [2].",  # a number changed
        "The railway line will be 400 km long.",  # its marker lost
        "The line ferroviaire will be 400 km long [2].",  # still French
        "The railway line will be 400 km long [2].\nNote: translated.",  # more than the sentence
    ],
)
def test_a_change_that_is_not_faithful_is_not_kept(rewrite: str) -> None:
    text = "The line ferroviaire will be 400 km long [2]."
    fixed, left, _ = _repaired(text, "1. ligne", rewrite)
    assert fixed == text and left == ["ferroviaire"]


def test_a_rewrite_that_loses_a_name_is_not_kept() -> None:
    text = "The Secrétaire General To Lam tasked the Party [15]."
    fixed, left, _ = _repaired(
        text, "1. Secrétaire", "The Secretary General tasked the Party [15]."
    )
    assert fixed == text and left == ["Secrétaire"]


def test_a_supported_sentence_that_the_check_no_longer_supports_once_changed_keeps_its_words() -> (
    None
):
    text = "The line ferroviaire will be 400 km long [2]."
    fixed, left, _ = _repaired(
        text, "1. railway", "The railway line will be 400 km long [2].", supported=False
    )
    assert fixed == text and left == ["ferroviaire"]


FRENCH_COPY = "Le potentiel du transport maritime et du tourisme est prometteur [4]."
STORED = "The potential of maritime transport and tourism is promising."


def test_a_sentence_the_model_cannot_put_in_english_becomes_its_evidence_s_stored_translation() -> (
    None
):
    text = f"The city has strengths. {FRENCH_COPY}"
    fixed, left, llm = _repaired(text, "1. potentiel", FRENCH_COPY, stored=STORED)
    assert fixed == f"The city has strengths. {STORED[:-1]} [4]."
    assert left == [] and [purpose(c) for c in llm.calls] == ["translate_terms", "one_language"]


@pytest.mark.parametrize(
    ("stored", "supported"),
    [
        ("", True),  # none stored
        (STORED, False),  # the check would not support it
        (STORED + " " + STORED * 3, True),  # far longer than the sentence
        ("Le potentiel est prometteur.", True),  # still French
    ],
)
def test_a_stored_translation_is_used_only_when_it_is_english_supported_and_not_too_long(
    stored: str, supported: bool
) -> None:
    fixed, left, _ = _repaired(
        FRENCH_COPY, "1. potentiel", FRENCH_COPY, supported=supported, stored=stored
    )
    assert fixed == FRENCH_COPY and left


def test_an_english_answer_to_a_german_article_records_the_words_it_could_not_translate(
    fake_settings: Settings,
) -> None:
    """The fake model quotes the German passage and cannot translate: the answer says which
    words are left, after asking to translate them and to rewrite the sentence."""
    llm = FakeChat()
    deps = build_deps(fake_settings, llm=llm)
    result = answer(deps, Question("What is the workshop part of?", filters=Filters(lang=["de"])))
    assert result.verdict in ("supported", "partly supported")
    assert result.foreign and result.foreign_left == result.foreign
    assert {"translate_terms", "one_language"} <= {purpose(c) for c in llm.calls}
    assert result.to_dict()["foreign_words"] == {
        "found": result.foreign,
        "left": result.foreign_left,
    }
    off = build_deps(fake_settings.model_copy(update={"one_language": False}), llm=FakeChat())
    assert (
        answer(off, Question("What is the workshop part of?", filters=Filters(lang=["de"]))).foreign
        == []
    )


def test_the_measurement_counts_answers_with_foreign_words_before_and_after() -> None:
    rows: list[dict[str, Any]] = [
        {"id": "a", "lang": "en", "found": ["ferroviaire"], "left": [], "s": 2.0},
        {
            "id": "b",
            "lang": "en",
            "found": ["Parteisekretär"],
            "left": ["Parteisekretär"],
            "s": 5.0,
        },
        {"id": "c", "lang": "fr", "found": [], "left": []},
    ]
    assert report(rows).splitlines() == [
        "answers: 3 (2 in English)",
        "with foreign words: 2 (2 English)",
        "still with foreign words after the rewrite: 1 (1 English)",
        "rewrite time per answer with foreign words: p50 5.0 s, max 5.0 s",
    ]
