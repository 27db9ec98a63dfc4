"""Article mode with a scripted model (FakeChat) over the shipped corpus in a real Chroma: what
the model reads, in which order, and what the citation check does with its reply."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bot.answering.article import EXCERPT_CHARS, excerpt, plan_articles, prefix_messages
from bot.answering.pipeline import answer, retrieve, stream_answer
from bot.answering.prompts import article_messages
from bot.answering.records import Answer, Retrying
from bot.answering.support import check_support
from bot.deps import Deps, build_deps
from bot.models.fake_llm import FakeChat, purpose
from bot.models.prefix_store import SENTINEL, PrefixStore
from bot.retrieval.articles import article_passages, llm_tokens, rank_articles, sections
from bot.retrieval.records import Hit, PassageMeta
from bot.settings import Settings

FRENCH = "003_b526725865409856"
FLAGSHIP = "What did To Lam ask of Hai Phong?"


def _deps(settings: Settings, *replies: str) -> tuple[Deps, FakeChat]:
    llm = FakeChat(replies)
    mode = settings.model_copy(update={"answer_mode": "article"})
    return build_deps(mode, llm=llm), llm


def test_the_flagship_question_reads_the_sentences_where_to_lam_says_what_the_city_must_do(
    fake_settings: Settings,
) -> None:
    deps, llm = _deps(fake_settings, "I don't know.", "I don't know.", "I don't know.")
    result = answer(deps, FLAGSHIP)
    read = llm.calls[0][-1]["content"]
    assert result.articles_tried[0].startswith(FRENCH + "@")
    assert (
        "le Secrétaire général a suggéré que la ville de Hai Phong doit faire du bon travail "
        "dans la construction du Parti" in read
    )
    assert "l'orientation de la planification de la ville doit être une zone urbaine" in read
    # constant instructions, then the article in reading order, then the question, last
    assert read.index("[1] ") < read.index("[2] ") < read.index(f"Question: {FLAGSHIP}")
    assert read.rstrip().endswith('"I don\'t know." if the passages do not say.')
    # the passages retrieval ranks closest are named after the question
    closest = re.search(r"\(Passages ((?:\[\d+\](?:, )?)+) seem closest", read)
    assert closest and len(re.findall(r"\d+", closest.group(1))) == 3
    assert FLAGSHIP not in llm.calls[0][0]["content"]


def test_the_prefix_does_not_depend_on_the_question_or_its_language(
    fake_settings: Settings,
) -> None:
    deps, _ = _deps(fake_settings)
    passages = article_passages(deps.index, FRENCH)
    assert [p.meta.chunk_index for p in passages] == list(range(len(passages)))
    english = article_messages(passages, [], FLAGSHIP, "en")
    thai = article_messages(passages, [], "โตลำขออะไรจากไฮฟอง?", "th")
    prefix = prefix_messages(sections(passages, 6000)[0])
    head = prefix[1]["content"].removesuffix(SENTINEL)
    assert english[0] == thai[0] == prefix[0]
    assert english[1]["content"].startswith(head) and thai[1]["content"].startswith(head)


def test_a_long_article_is_read_in_sections_of_at_most_the_set_size(
    fake_settings: Settings,
) -> None:
    deps, _ = _deps(fake_settings)
    passages = article_passages(deps.index, FRENCH)
    parts = sections(passages, 1500)
    assert len(parts) > 2 and [p for s in parts for p in s.passages] == passages
    sizes = [sum(llm_tokens(p.text) + 12 for p in part.passages) for part in parts]
    assert max(sizes) <= 1500
    assert len(parts) <= -(-sum(sizes) // 1500) + 1  # few: passages are cut whole
    assert min(sizes) > max(sizes) / 2  # of about equal length: no short tail
    assert len({s.label for s in parts}) == len(parts)
    assert sections(passages, 10**6)[0].passages == passages


def test_articles_rank_by_their_best_passage() -> None:
    def hit(doc: str, score: float) -> Hit:
        return Hit(f"{doc}-{score}", "t", PassageMeta(doc_id=doc), score)

    long = [hit("long", 0.02) for _ in range(6)]
    assert rank_articles([hit("short", 0.03), *long]) == ["short", "long"]


def _first_sentence(deps: Deps, question: str, article: int) -> str:
    """The first sentence of the article plan `article` (0: the best), cited as [1]."""
    first = retrieve(deps, question, "en", deps.settings.top_k).plans[article].passages[0]
    start, end = first.sentences()[0]
    return f"{first.text[start:end].rstrip('.')} [1]."


def test_a_refused_reading_is_read_again_from_the_best_passages_then_the_next_article(
    fake_settings: Settings,
) -> None:
    question = "Who is the Chairman of the Hai Phong People's Committee?"
    deps, llm = _deps(fake_settings, "I don't know.", "I don't know.")
    llm.replies.append(_first_sentence(deps, question, 1))  # the second article's own words
    events = list(stream_answer(deps, question))
    result = events[-1].answer  # type: ignore[union-attr]
    assert len(llm.calls) == 3 and result.tries == [
        "article: refused",
        "passages: refused",
        "article: supported",
    ]
    assert [e.kind for e in events if isinstance(e, Retrying)] == ["passages", "article"]
    assert not result.refused and result.article_id == result.articles_tried[2].split("@")[0]
    # what each reading was given: the first article, the passages alone, the next article
    assert [purpose(call) for call in llm.calls] == ["article", "answer", "article"]
    assert llm.calls[0] != llm.calls[2]
    assert result.timings["tries"] == 3


def test_without_rereading_a_refusal_is_sought_in_the_next_article_only(
    fake_settings: Settings,
) -> None:
    settings = fake_settings.model_copy(update={"reread": False})
    question = "Who is the Chairman of the Hai Phong People's Committee?"
    deps, llm = _deps(settings, "I don't know.")
    llm.replies.append(_first_sentence(deps, question, 1))
    result = answer(deps, question)
    assert len(llm.calls) == 2 and len(result.articles_tried) == 2
    assert not result.refused and result.article_id == result.articles_tried[1].split("@")[0]


def test_the_citation_check_moves_a_marker_to_the_passage_that_supports_the_sentence(
    fake_settings: Settings,
) -> None:
    deps, _ = _deps(fake_settings)
    hits = deps.retriever.search(FLAGSHIP, 30)[0]
    plan = next(p for p in plan_articles(deps, hits, "en", FLAGSHIP) if p.section.doc_id == FRENCH)
    n_railway = next(n for n, p in enumerate(plan.passages, 1) if "Lao Cai" in p.text)
    wrong = 1 if n_railway != 1 else 2
    reply = (
        f"The city asked for the Lao Cai - Hanoi - Hai Phong railway line. [{wrong}]\n"
        "The moon is made of green cheese [1].\n"
        "It wants a railway from Lao Cai to Hanoi and Hai Phong. "
        f"[{n_railway}], [{wrong}]"
    )
    checked = check_support(deps.embedder, reply, plan.passages, len(plan.passages), [])
    railway, moon, both = checked.claims
    # of two markers, the one pointing at a passage that does not support the sentence goes
    assert both.supported and both.cited == [n_railway] and both.moved_from == [n_railway, wrong]
    assert checked.text.endswith(f"Hanoi and Hai Phong [{n_railway}].")
    assert railway.supported and railway.cited == [n_railway] and railway.moved_from == [wrong]
    assert f"railway line [{n_railway}]." in checked.text
    assert [c.n for c in checked.citations] == list(dict.fromkeys([n_railway, 1]))
    evidence = railway.evidence[0]
    assert "Lao Cai" in plan.passages[evidence.n - 1].text[evidence.start : evidence.end]
    assert not moon.supported and moon.cited == [1]
    result = Answer(
        FLAGSHIP,
        FLAGSHIP,
        "en",
        text=checked.text,
        passages=plan.passages,
        context_n=len(plan.passages),
        citations=checked.citations,
        claims=checked.claims,
    )
    assert result.to_dict()["sentences"][0]["evidence"][0]["n"] == n_railway


def test_the_prefix_store_keeps_the_budget_and_the_labels_it_is_told(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path / "p", budget_bytes=2500)
    store.put("a@1#0", [1, 2, 3], b"x" * 1000)
    store.put("b@1#0", [1, 2, 9, 9], b"y" * 1000)
    assert store.best([1, 2, 3, 4, 5]) == (store.entries()[0].name, 3)
    assert store.best([1, 2]) == (None, 0)  # an entry counts only when all of it matches
    store.read(store.best([1, 2, 3])[0] or "")  # "a" is now the most recently used
    store.put("c@1#0", [5, 6], b"z" * 1000)  # over budget: "b", least recently used, goes
    assert {e.label for e in store.entries()} == {"a@1#0", "c@1#0"}
    store.put("a@1#0", [1, 2, 3, 4], b"w" * 1200)  # a longer read of "a" replaces it
    assert [e.n_tokens for e in store.entries() if e.label == "a@1#0"] == [4]
    assert store.retain(["c@1#0"]) and [e.label for e in store.entries()] == ["c@1#0"]
    again = PrefixStore(tmp_path / "p", budget_bytes=2500)  # as the next server start sees it
    assert [e.label for e in again.entries()] == ["c@1#0"]
    assert again.read(again.entries()[0].name) == b"z" * 1000
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == sorted(
        ["index.json", f"{again.entries()[0].name}.state", f"{again.entries()[0].name}.tokens.npy"]
    )
    assert np.array_equal(again.tokens(again.entries()[0].name), [5, 6])


@pytest.mark.parametrize("mode", ["auto", "passages"])
def test_without_a_server_that_keeps_prefixes_auto_answers_from_passages(
    fake_settings: Settings, mode: str
) -> None:
    llm = FakeChat(["Nguyen Van Tung [1]."])
    deps = build_deps(fake_settings.model_copy(update={"answer_mode": mode}), llm=llm)
    result = answer(deps, "Who is the Chairman of the Hai Phong People's Committee?")
    assert result.mode == "passages" and "Sources:" in llm.calls[0][-1]["content"]


def test_a_passage_from_another_article_is_cut_to_the_sentences_closest_to_the_question(
    fake_settings: Settings,
) -> None:
    deps, _ = _deps(fake_settings)
    english = "002_1ca994a0bc34cf02"
    passage = next(p for p in article_passages(deps.index, english) if "35/2021" in p.text)
    question = "Which mechanisms of National Assembly Resolution 35/2021 are to be reviewed?"
    cut = excerpt(deps, passage, lambda: deps.embedder.embed_query(question))
    kept = cut.text.split(" … ")
    assert len(kept) < len(passage.sentences()) and len(cut.text) < len(passage.text)
    assert len(kept) == 1 or len(cut.text) <= EXCERPT_CHARS + 3 * len(kept)
    assert any("35/2021/QH15" in sentence for sentence in kept)
    places = [passage.text.index(sentence) for sentence in kept]
    assert places == sorted(places)  # in reading order
    assert cut.id == passage.id and cut.meta == passage.meta
