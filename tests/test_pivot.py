"""Each article in English too (bot.answering.pivot), with a scripted model over the shipped
corpus in a real Chroma: stored sentence by sentence, aligned with the originals, dropped with
the article, never made twice; read again in translation when the original gives no supported
answer, the answer citing the originals."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from bot.answering.pipeline import answer
from bot.answering.pivot import (
    articles_to_translate,
    faithful,
    invented_names,
    stored_translation,
    translate_all,
    translated_passages,
)
from bot.answering.question import Question
from bot.deps import Deps, build_deps
from bot.models.fake_llm import FakeChat
from bot.models.llm import Message
from bot.retrieval.articles import article_passages
from bot.retrieval.records import Filters
from bot.settings import Settings
from bot.warmup import Warmup
from ingest.pipeline import ingest_paths
from tests.conftest import CORPUS, make_settings
from webui.backend import Backend

FRENCH = "003_b526725865409856"
ENGLISH = {"000_dc2988f8c62b768a", "001_5e3177cbc2a4a8ec", "002_1ca994a0bc34cf02"}


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Settings, Path]:
    """The shipped corpus, copied and indexed with the hashing embedder, for this test alone."""
    data = tmp_path / "articles"
    shutil.copytree(CORPUS, data)
    settings = make_settings(
        tmp_path, data_dir=data, embedder="fake", llm_backend="fake", answer_mode="article"
    )
    ingest_paths([data], settings, progress=False)
    return settings, data


def _deps(settings: Settings, llm: FakeChat | None = None) -> Deps:
    return build_deps(settings, llm=llm or FakeChat())


def _langs(deps: Deps) -> dict[str, str]:
    return {d: str(r["lang"]) for d, r in deps.index.articles().items()}


def test_every_article_not_in_english_is_stored_sentence_by_sentence_once(
    corpus: tuple[Settings, Path],
) -> None:
    deps = _deps(corpus[0])
    langs = _langs(deps)
    foreign = sorted(d for d, lang in langs.items() if lang != "en")
    assert foreign and set(langs) - set(foreign)  # the corpus has both
    assert articles_to_translate(deps.index, "en") == foreign
    llm = FakeChat()
    progress = translate_all(deps.index, llm, "en")
    assert sorted(progress.timings) == foreign and progress.done == progress.total == len(foreign)
    for doc_id in foreign:
        passages = article_passages(deps.index, doc_id)
        found = translated_passages(deps.index, passages, "en")
        assert found is not None and len(found) == len(passages)
        for pair in found:
            assert pair.hit.meta.lang == "en" and pair.original is not None
            spans = pair.original.sentences()
            assert [o for _, o in pair.pairs] == spans  # one translated sentence per sentence
            for (a, b), (start, end) in pair.pairs:
                # the fake "translates" by naming the language before the sentence
                assert pair.hit.text[a:b] == "(English) " + pair.original.text[start:end]
    for doc_id in set(langs) - set(foreign):
        assert translated_passages(deps.index, article_passages(deps.index, doc_id), "en") is None
    asked = len(llm.calls)
    assert asked == sum(progress.sentences.values()) > 0
    assert articles_to_translate(deps.index, "en") == []
    translate_all(deps.index, llm, "en")
    assert len(llm.calls) == asked  # never made twice for an unchanged article


def test_a_stopped_translation_goes_on_from_the_first_passage_not_stored(
    corpus: tuple[Settings, Path],
) -> None:
    deps = _deps(corpus[0])
    stop = threading.Event()
    calls = 0

    def wait() -> None:  # the warm-up's "questions first": here, stop after a few sentences
        nonlocal calls
        calls += 1
        if calls == 4:
            stop.set()

    translate_all(deps.index, FakeChat(), "en", wait=wait, stop=stop)
    passages = article_passages(deps.index, FRENCH)
    assert translated_passages(deps.index, passages, "en") is None  # not whole yet
    stored = deps.index.translated({"doc_id": FRENCH})
    # a passage is stored whole or not at all
    by_passage: dict[str, int] = {}
    for _, meta in stored:
        by_passage[meta["passage_id"]] = by_passage.get(meta["passage_id"], 0) + 1
    sentences = {p.id: len(p.sentences()) for p in passages}
    assert all(n == sentences[pid] for pid, n in by_passage.items())
    llm = FakeChat()
    translate_all(deps.index, llm, "en")
    assert translated_passages(deps.index, passages, "en") is not None
    done_before = sum(by_passage.values())
    total = sum(len(p.sentences()) for p in passages)
    french_calls = [c for c in llm.calls if "from a French news article" in c[-1]["content"]]
    assert len(french_calls) == total - done_before


def test_translations_go_with_their_article(corpus: tuple[Settings, Path]) -> None:
    settings, data = corpus
    deps = _deps(settings)
    translate_all(deps.index, FakeChat(), "en")
    assert deps.index.translated({"doc_id": FRENCH})
    # a new version of the article: its old translation is dropped, a new one made
    article = data / f"{FRENCH}.txt"
    text = article.read_text(encoding="utf-8")
    article.write_text(text.replace("14/20 cibles", "15/20 cibles"), encoding="utf-8")
    ingest_paths([data], settings, progress=False)
    version = (deps.index.record(FRENCH) or {}).get("version")
    assert {m["version"] for _, m in deps.index.translated({"doc_id": FRENCH})} <= {version}
    assert articles_to_translate(deps.index, "en") == [FRENCH]
    translate_all(deps.index, FakeChat(), "en")
    stored = " ".join(t for t, _ in deps.index.translated({"doc_id": FRENCH}))
    assert "(English) Selon" in stored and "15/20 cibles" in stored
    assert "14/20 cibles" not in stored
    deps.index.remove(FRENCH)
    assert deps.index.translated({"doc_id": FRENCH}) == []


def test_a_translation_that_loses_a_figure_is_not_used() -> None:
    assert faithful("Le budget est de 1.500 milliards.", "The budget is 1,500 billion.")
    assert not faithful("Le budget est de 1.500 milliards.", "The budget is large.")
    assert not faithful("Il a dit oui.", "He said yes. " * 10)  # runs on
    assert not faithful("Il a dit oui.", "  ")
    # a name the original does not hold (what the model wrote for Hai Phong from Thai)
    thai = "ความท้าทายของเมืองไฮฟอง"
    assert not faithful(thai, "The challenges of the city of Hefong.")
    assert invented_names(thai, "The challenges of the city of Hefong.", "en") == ["Hefong"]
    # the original's names, however spaced or accented, and common words are not invented
    german = "Der Parteisekretär von Hải Phòng, Lê Tiến Châu, sprach über IDE."
    assert faithful(german, "The Party Secretary of Haiphong, Le Tien Chau, spoke of IDEs.")


class _Dropping(FakeChat):
    """Translates every sentence without its figures."""

    def complete(self, messages: list[Message], max_tokens: int) -> str:
        self.calls.append(messages)
        return "A sentence without figures."


def test_the_original_sentence_stands_where_the_translation_is_not_faithful(
    corpus: tuple[Settings, Path],
) -> None:
    deps = _deps(corpus[0])
    translate_all(deps.index, _Dropping(), "en")
    passages = article_passages(deps.index, FRENCH)
    found = translated_passages(deps.index, passages, "en")
    assert found is not None
    with_figures = [
        (pair, (a, b), (s, e))
        for pair in found
        for (a, b), (s, e) in pair.pairs
        if any(ch.isdigit() for ch in pair.original.text[s:e])
    ]
    assert with_figures
    for pair, (a, b), (s, e) in with_figures:
        original = pair.original.text[s:e]
        assert pair.hit.text[a:b] == original  # it stands in, untranslated
        assert stored_translation(deps.index, original, "fr", "en") is None


def test_show_in_english_answers_from_the_stored_translation(
    corpus: tuple[Settings, Path],
) -> None:
    settings, _ = corpus
    llm = FakeChat()
    backend = Backend(settings, llm)
    backend.prepare()
    try:
        assert backend.deps is not None
        translate_all(backend.deps.index, FakeChat(["The Party Secretary spoke."] * 400), "en")
        passage = article_passages(backend.deps.index, FRENCH)[0]
        start, end = passage.sentences()[0]
        sentence = " ".join(passage.text[start:end].split())
        asked = len(llm.calls)
        assert backend.translate(sentence, "fr", "en")["text"] == "The Party Secretary spoke."
        assert len(llm.calls) == asked  # stored: the model is not asked
    finally:
        backend.close()


def test_an_unanswered_article_is_read_again_in_english_and_cited_in_the_original(
    corpus: tuple[Settings, Path],
) -> None:
    settings = corpus[0].model_copy(update={"one_language": False, "read_translation": True})
    index = _deps(settings).index
    translate_all(index, FakeChat(), "en")
    originals = article_passages(index, FRENCH)
    found = translated_passages(index, originals, "en")
    assert found is not None
    # the sentence that says what Hai Phong asked, as the translation has it, and its original
    n, pair, (a, b), (s, e) = next(
        (n, pair, t, o)
        for n, pair in enumerate(found, 1)
        for t, o in pair.pairs
        if "a demandé au secrétaire général" in pair.original.text[o[0] : o[1]]
    )
    translated = pair.hit.text[a:b]
    # neither the original nor the best passages give an answer; the translation that sentence
    llm = FakeChat(["I don't know.", "I don't know.", f"{translated} [{n}]"])
    result = answer(_deps(settings, llm), "Qu'a demandé To Lam à Hai Phong ?")
    assert result.tries == ["article: refused", "passages: refused", "translation: supported"]
    assert result.mode == "translation" and result.article_id == FRENCH
    assert translated in llm.calls[2][-1]["content"]  # the model read the translation
    assert [p.id for p in result.passages[: len(originals)]] == [p.id for p in originals]
    assert [c.passage.id for c in result.citations] == [originals[n - 1].id]
    # the evidence is the original sentence the translated one renders
    said = result.to_dict()["sentences"][0]["evidence"][0]
    assert said["n"] == n and said["text"] == originals[n - 1].text[s:e]
    assert (said["start"], said["end"]) == (s, e)


def test_without_a_pivot_language_nothing_is_translated_nor_read_in_translation(
    corpus: tuple[Settings, Path],
) -> None:
    settings = corpus[0].model_copy(update={"pivot_language": "none", "read_translation": True})
    deps = _deps(settings)
    assert translate_all(deps.index, FakeChat(), "none").total == 0
    llm = FakeChat(["I don't know."] * 5)
    result = answer(_deps(settings, llm), "Qu'a demandé To Lam à Hai Phong ?")
    assert not any(t.startswith("translation") for t in result.tries)
    assert not Warmup(deps).translating  # nor with the scripted model, whatever the setting
    assert not Warmup(_deps(corpus[0])).translating


class _Windy(FakeChat):
    """Translates the sentence about offshore wind with a word no article holds."""

    def complete(self, messages: list[Message], max_tokens: int) -> str:
        reply = super().complete(messages, max_tokens)
        return reply + " Windmillish." if "éolienne offshore" in reply else reply


def test_an_english_word_of_the_translation_finds_the_french_passage(
    corpus: tuple[Settings, Path],
) -> None:
    settings = corpus[0]
    deps = _deps(settings)
    assert all(h.lexical_rank is None for h in deps.retriever.search("windmillish", 5)[0])
    translate_all(deps.index, _Windy(), "en")
    fresh = _deps(settings)  # a process started after the translation
    for retriever in (deps.retriever, fresh.retriever):
        if retriever.translated is not None:
            retriever.translated.RECHECK_S = 0.0  # the one held: read again now
        hits, _ = retriever.search("windmillish", 5)
        found = [h for h in hits if h.lexical_rank == 1]
        assert found and found[0].doc_id == FRENCH and "éolienne offshore" in found[0].text
    off = _deps(settings.model_copy(update={"pivot_language": "none"}))
    assert all(h.lexical_rank is None for h in off.retriever.search("windmillish", 5)[0])


def test_by_default_answering_does_not_read_the_translation(
    corpus: tuple[Settings, Path],
) -> None:
    settings = corpus[0]
    translate_all(_deps(settings).index, FakeChat(), "en")
    llm = FakeChat(["I don't know."] * 5)
    result = answer(_deps(settings, llm), "Qu'a demandé To Lam à Hai Phong ?")
    assert result.tries[:2] == ["article: refused", "passages: refused"]
    assert not any(t.startswith("translation") for t in result.tries)


class _Backing(FakeChat):
    """Translates the sentence saying what Hai Phong asked of To Lam in words of its own."""

    SAID = (
        "Hai Phong asked the General Secretary for backing of the harbour programme under "
        "conclusion 96-KL/TW of 30 September 2024 and Resolution 35/2021/QH15 in 2025."
    )

    def complete(self, messages: list[Message], max_tokens: int) -> str:
        reply = super().complete(messages, max_tokens)
        return self.SAID if "a demandé au secrétaire général" in reply else reply


@pytest.mark.parametrize(("pivot", "check"), [("en", True), ("none", True), ("en", False)])
def test_an_english_answer_is_checked_against_the_translation_and_cites_the_original(
    corpus: tuple[Settings, Path], pivot: str, check: bool
) -> None:
    settings = corpus[0].model_copy(update={"one_language": False, "reread": False})
    translate_all(_deps(settings).index, _Backing(), "en")
    originals = article_passages(_deps(settings).index, FRENCH)
    n, (s, e) = next(
        (n, span)
        for n, p in enumerate(originals, 1)
        for span in p.sentences()
        if "a demandé au secrétaire général" in p.text[span[0] : span[1]]
    )
    llm = FakeChat([f"The city wanted backing for the harbour programme [{n}]."])
    settings = settings.model_copy(update={"pivot_language": pivot, "check_translation": check})
    asked = Question("What backing did Hai Phong want?", filters=Filters(doc_ids=[FRENCH]))
    result = answer(_deps(settings, llm), asked)
    assert result.article_id == FRENCH and result.mode == "article"
    if pivot == "none" or not check:  # the French sentence alone does not carry the answer
        assert result.tries == ["article: unsupported"]
        return
    assert result.tries == ["article: supported"]
    assert [c.passage.id for c in result.citations] == [originals[n - 1].id]
    said = result.to_dict()["sentences"][0]["evidence"][0]
    assert said["text"] == originals[n - 1].text[s:e]  # highlighted in the original
