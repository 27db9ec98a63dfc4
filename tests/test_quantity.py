"""A figure given for the wrong quantity: the kind a question asks for (bot.answering.quantity)
and the answer withheld when its evidence states none, over the shipped corpus (hashing
embedder, scripted model)."""

from __future__ import annotations

import pytest

from bot.answering.pipeline import answer, stream_answer
from bot.answering.quantity import kinds_asked, states_kind
from bot.answering.question import Question
from bot.answering.records import Token
from bot.answering.support import SentenceCheck, check_support
from bot.deps import build_deps
from bot.models.fake_llm import FakeChat
from bot.retrieval.articles import article_passages
from bot.retrieval.records import Filters
from bot.settings import Settings

FRENCH = "003_b526725865409856"
WIND = "ordonner au gouvernement d’allouer prochainement 1 000 MW d’énergie éolienne offshore"


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("How much will the Lao Cai - Hanoi - Hai Phong railway cost?", {"money"}),
        ("What budget was set for the offshore wind projects?", {"money"}),
        ("Quel est le budget de la zone économique côtière sud ?", {"money"}),
        ("Wie viel kostet der neue Hafen?", {"money"}),
        ("Dự án có tổng vốn đầu tư bao nhiêu?", {"money"}),
        ("โครงการนี้ใช้งบประมาณเท่าไร", {"money"}),
        ("How long, in kilometres, is the new railway?", {"length"}),
        ("Wie lang ist die Strecke?", {"length"}),
        ("How much solar power capacity did Hai Phong ask for?", {"power"}),
        ("ท่าเรือรองรับสินค้าได้ปีละกี่ตัน", {"weight"}),
        ("Wie hoch ist die Arbeitslosenquote in Hai Phong?", {"share"}),
        ("What percentage of enterprises have party cells?", {"share"}),
        ("How many hectares will be reclaimed from the sea?", {"area"}),
        # naming money, a length or a rate without asking an amount of it
        ("Which investment programmes did the Party Secretary list?", set()),
        ("In welche Infrastruktur soll investiert werden?", set()),
        ("Which budget plays the guiding role in mobilizing resources?", set()),
        ("What did he say about the city's growth rate?", set()),
        ("Which motto does the resolution quote?", set()),
        ("Wie lange dauert der Bau?", set()),
        ("How does the area change with the merger?", set()),
        ("How many delegates attended the workshop?", set()),  # any number states a count
        ("When will the port open?", set()),
    ],
)
def test_the_kind_of_quantity_a_question_asks_for(question: str, kinds: set[str]) -> None:
    assert kinds_asked(question) == kinds


@pytest.mark.parametrize(
    ("sentence", "kind", "states"),
    [
        (WIND, "power", True),
        (WIND, "money", False),
        ("The railway will cost $8.4 billion.", "money", True),
        ("The railway will cost USD 8.4 billion.", "money", True),
        ("Dự án có tổng vốn 5.000 tỷ đồng.", "money", True),
        ("Das Projekt kostet 2 Milliarden Euro.", "money", True),
        ("โครงการใช้งบประมาณ 500 ล้านบาท", "money", True),
        ("The line is 390 km long.", "length", True),
        ("Chaque année, 70 % des entreprises non étatiques ont des conditions", "share", True),
        ("représentant plus de 90% du PIB", "share", True),
        ("maintaining a high growth rate of two digits", "share", False),
        ("recruter entre 15 000 et 15 500 membres du Parti", "weight", False),
        ("Viet Nam 14/11/2024", "length", False),  # a date is no length
        ("zum 70. Jahrestag", "length", False),
        ("https://example.org/news-post547881.html", "weight", False),
        ("Lach Huyen handles 1.2 million TEU a year.", "weight", True),
    ],
)
def test_whether_a_sentence_states_a_figure_of_a_kind(
    sentence: str, kind: str, states: bool
) -> None:
    assert states_kind(sentence, {kind}) is states


def _sentence(passages: list, words: str) -> int:
    return next(n for n, p in enumerate(passages, 1) if words in p.text)


@pytest.mark.parametrize("check", [True, False])
def test_megawatts_given_as_a_budget_are_withheld_with_the_draft_kept(
    fake_settings: Settings, check: bool
) -> None:
    settings = fake_settings.model_copy(
        update={"answer_mode": "article", "reread": False, "check_quantity": check}
    )
    deps = build_deps(settings, llm=FakeChat())
    n = _sentence(article_passages(deps.index, FRENCH), "1 000 MW")
    draft = (
        "Le budget : le gouvernement doit allouer prochainement 1 000 MW d’énergie éolienne "
        f"offshore à la ville de Hai Phong [{n}]."
    )
    asked = Question(
        "Quel est le budget de l'énergie éolienne offshore de Hai Phong ?",
        filters=Filters(doc_ids=[FRENCH]),
    )
    events = list(stream_answer(build_deps(settings, llm=FakeChat([draft])), asked))
    result = events[-1].answer  # type: ignore[union-attr]
    streamed = "".join(e.text for e in events if isinstance(e, Token))
    assert result.article_id == FRENCH and result.mode == "article"
    if check:  # never shown, not even while it streamed
        assert result.verdict == "unsupported" and result.draft == draft
        assert "MW" not in streamed
        assert result.text.startswith("Les articles")
        assert [c.n for c in result.citations][:1] == [n]  # the closest evidence shown
    else:  # the figure and the words are in the evidence: the citation check passes it
        assert result.verdict == "supported" and result.text == draft


def test_a_share_stated_in_the_evidence_is_answered(fake_settings: Settings) -> None:
    settings = fake_settings.model_copy(update={"answer_mode": "article", "reread": False})
    deps = build_deps(settings, llm=FakeChat())
    n = _sentence(article_passages(deps.index, FRENCH), "70 % des entreprises")
    reply = f"Chaque année, 70 % des entreprises non étatiques ont des conditions [{n}]."
    asked = Question(
        "Quel pourcentage des entreprises non étatiques ont des conditions chaque année ?",
        filters=Filters(doc_ids=[FRENCH]),
    )
    result = answer(build_deps(settings, llm=FakeChat([reply])), asked)
    assert result.verdict == "supported" and result.text == reply


def test_a_sentence_rewritten_later_needs_support_not_the_figure_asked_for(
    fake_settings: Settings,
) -> None:
    """The gate and the verdict ask for evidence stating the kind; a rewrite of one sentence of
    an answer whose figure another sentence gives asks only for support."""
    deps = build_deps(fake_settings, llm=FakeChat())
    passages = article_passages(deps.index, FRENCH)
    check = SentenceCheck(deps.embedder, passages, len(passages), asks=frozenset({"money"}))
    n = _sentence(passages, "1 000 MW")
    sentence = f"Le gouvernement doit allouer prochainement 1 000 MW d’énergie éolienne [{n}]."
    assert check.supports(sentence) and not check(sentence)
    assert SentenceCheck(deps.embedder, passages, len(passages))(sentence)


@pytest.mark.parametrize("figure", ["1,000", "1.000", "1\u202f000"])
def test_a_figure_is_matched_however_its_thousands_are_written(
    fake_settings: Settings, figure: str
) -> None:
    """The French article writes "1 000 MW"; an English answer "1,000 MW", a German one
    "1.000 MW": the citation check holds them the same figure as the article's."""
    deps = build_deps(fake_settings, llm=FakeChat())
    passages = article_passages(deps.index, FRENCH)
    n = _sentence(passages, "1 000 MW")

    def score(written: str) -> float:
        reply = f"It was {written} MW [{n}]."
        checked = check_support(deps.embedder, reply, passages, len(passages), [])
        claim = checked.claims[0]
        assert claim.supported and claim.cited == [n]
        return claim.evidence[0].score

    assert score(figure) == pytest.approx(score("1 000"), abs=0.5)  # a figure missed: -1
