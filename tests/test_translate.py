"""Evidence in the reader's language: webui.translate, the Backend's server function and
the sources panel's button (the browser test clicks it)."""

from __future__ import annotations

import pytest

from bot.answering.pivot import cleaned
from bot.errors import BotError
from bot.models.fake_llm import FakeChat
from bot.models.llm import Message
from bot.retrieval.records import Hit, PassageMeta
from tests.fake_models import Silent
from webui.backend import Backend
from webui.sources import SourcesView, sources_html
from webui.translate import MAX_CHARS, Translations

FRENCH = "Le Secrétaire général a suggéré que la ville de Hai Phong doit faire du bon travail."


class _Failing(Silent):
    def complete(self, messages: list[Message], max_tokens: int) -> str:
        raise BotError("Cannot reach the LLM at http://127.0.0.1:9/v1.")


@pytest.mark.parametrize(
    "reply",
    [
        'Translation: "The General Secretary asked for good work."',
        "« The General Secretary asked for good work. »",
        "  The General Secretary asked for good work.\n",
    ],
)
def test_what_small_models_wrap_a_translation_in_is_taken_off(reply: str) -> None:
    assert cleaned(reply) == "The General Secretary asked for good work."


def test_a_sentence_is_translated_once_per_language() -> None:
    llm, translations = FakeChat(), Translations()
    first = translations.translate(llm, FRENCH, "fr", "en")
    assert first == f"(English) {FRENCH}" and len(llm.calls) == 1
    assert translations.translate(llm, FRENCH + " ", "fr", "en") == first  # from the cache
    translations.translate(llm, FRENCH, "fr", "de")
    assert len(llm.calls) == 2 and "into German" in llm.calls[-1][-1]["content"]


def test_what_cannot_be_translated_is_refused_with_a_reason() -> None:
    translations = Translations()
    for text, source, target, reason in [
        ("", "fr", "en", "nothing to translate"),
        ("x" * (MAX_CHARS + 1), "fr", "en", f"Only up to {MAX_CHARS}"),
        (FRENCH, "fr", "xx", "not a language the bot knows"),
        (FRENCH, "fr", "fr", "already in that language"),
    ]:
        with pytest.raises(BotError, match=reason):
            translations.translate(FakeChat(), text, source, target)
    with pytest.raises(BotError, match="no translation"):
        translations.translate(FakeChat(["  "]), FRENCH, "fr", "en")


def test_the_backend_translates_or_says_why_not(backend: Backend) -> None:
    done = backend.translate(FRENCH, "fr", "en")
    assert done["text"] == f"(English) {FRENCH}" and "Machine translation" in done["note"]
    assert backend.deps is not None
    backend.deps.llm = _Failing()
    assert backend.translate(FRENCH, "fr", "en") == done  # cached: the model is not asked
    assert backend.translate(FRENCH, "fr", "de") == {
        "error": "Cannot reach the LLM at http://127.0.0.1:9/v1."
    }


def _hit(lang: str, text: str) -> Hit:
    return Hit(f"{lang}:1:0000", text, PassageMeta(doc_id=lang, title="T", lang=lang), 0.1)


def test_a_cited_sentence_in_another_language_than_the_question_offers_a_translation() -> None:
    hostile = 'Il a dit "<b>oui</b>" & plus. Une autre phrase.'
    view = SourcesView(
        passages=[_hit("fr", hostile), _hit("en", "It grew. More.")],
        context_n=2,
        phase="done",
        cited=[1, 2],
        lang="en",
        highlights={1: [(0, 30)], 2: [(0, 8)]},
    )
    page = sources_html(view)
    assert page.count('class="nqa-translate"') == 1  # not for the English card
    assert 'data-text="Il a dit &quot;&lt;b&gt;oui&lt;/b&gt;&quot; &amp; plus."' in page
    assert 'data-from="fr" data-to="en">Show in English</button>' in page
    view.cited = [2]  # an uncited card offers none, nor a card without a highlight
    assert "nqa-translate" not in sources_html(view)
