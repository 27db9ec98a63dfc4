"""Answering logic with a scripted model (FakeChat) over the shipped corpus in a real Chroma."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from bot.answering.pipeline import answer, stream_answer
from bot.answering.question import Question
from bot.answering.records import Checking, Done, Sources, Token
from bot.deps import Deps, build_deps
from bot.errors import BotError
from bot.models.fake_llm import FakeChat, purpose
from bot.models.llm import Message
from bot.retrieval.records import Filters, Hit, PassageMeta
from bot.retrieval.translations import fold_translations
from bot.settings import Settings
from ingest.pipeline import Summary
from tests.conftest import run_documented_example


def _deps(settings: Settings, *replies: str) -> tuple[Deps, FakeChat]:
    llm = FakeChat(replies)
    return build_deps(settings, llm=llm), llm


CHAIRMAN = (
    "Nguyen Van Tung is the Chairman of Hai Phong People's Committee [1]. "
    "He is also Vice Secretary of Hai Phong Municipal Party Committee [1]."
)


def test_sources_come_first_then_tokens_once_a_sentence_is_checked_then_the_answer(
    fake_settings: Settings,
) -> None:
    deps, _ = _deps(fake_settings, CHAIRMAN)
    events = list(stream_answer(deps, "Who is the Chairman of the People's Committee?"))
    assert isinstance(events[0], Sources) and events[0].passages
    assert isinstance(events[1], Checking)  # the model began; nothing is shown until checked
    assert all(isinstance(e, Token) for e in events[2:-1]) and len(events) > 4
    first = events[2].text  # type: ignore[union-attr]
    assert first.startswith("Nguyen Van Tung is the Chairman") and "[1]." in first  # whole
    done = events[-1]
    assert isinstance(done, Done)
    streamed = "".join(e.text for e in events if isinstance(e, Token))
    assert streamed.strip() == done.answer.text
    assert [c.n for c in done.answer.citations] == [1]
    assert done.answer.citations[0].passage_id == done.answer.passages[0].id
    assert not done.answer.refused and done.answer.verdict == "supported"


def test_a_reply_the_check_supports_nowhere_is_never_shown_but_kept_as_a_draft(
    fake_settings: Settings,
) -> None:
    invented = "The city plans to host the 2040 Olympic Games in Do Son [1]."
    deps, llm = _deps(fake_settings, invented, invented)
    events = list(stream_answer(deps, "Which sports event will Hai Phong host?"))
    tokens = [e.text for e in events if isinstance(e, Token)]
    result = events[-1].answer  # type: ignore[union-attr]
    assert result.verdict == "unsupported" and not result.refused
    assert result.draft == invented and "Olympic" not in "".join(tokens)
    assert result.text.startswith("The articles do not seem to say this.") and tokens == [
        result.text
    ]
    closest = [c.n for c in result.citations]
    assert closest and result.text.endswith(" ".join(f"[{n}]" for n in closest))
    assert result.to_dict()["verdict"] == "unsupported" and result.to_dict()["draft"] == invented
    assert len(llm.calls) == 1, "the passages were what the model read: nothing else to read"


def test_a_citation_beyond_the_given_passages_never_reaches_the_user(
    fake_settings: Settings,
) -> None:
    chairman = "Nguyen Van Tung is the Chairman of Hai Phong People's Committee [1]."
    deps, _ = _deps(fake_settings, f"{chairman} It also shrank [9].")
    events = list(stream_answer(deps, "Who is the Chairman of the People's Committee?"))
    streamed = "".join(e.text for e in events if isinstance(e, Token))
    assert "[9]" not in streamed
    result = events[-1].answer  # type: ignore[union-attr]
    assert result.text == f"{chairman} It also shrank." and result.verdict == "partly supported"
    assert [c.n for c in result.citations] == [1]


def test_refusal_is_said_in_the_question_language_and_marked(fake_settings: Settings) -> None:
    deps, _ = _deps(fake_settings, "I don't know.")
    events = list(stream_answer(deps, "Qui a gagné la Coupe du monde de football en 2022 ?"))
    tokens = [e.text for e in events if isinstance(e, Token)]
    result = events[-1].answer  # type: ignore[union-attr]
    assert result.refused and result.lang == "fr"
    assert tokens == ["Je ne sais pas : les articles indexés ne le disent pas."]
    assert result.citations == [] and result.passages, "the passages are still there to read"


def test_a_follow_up_is_rewritten_before_retrieval(fake_settings: Settings) -> None:
    deps, llm = _deps(
        fake_settings,
        "What did Tran Luu Quang say about the city's growth rate?",
        "A growth rate of two digits [1].",
    )
    history = [
        {"role": "user", "content": "Who concluded the July 15 conference?"},
        {"role": "assistant", "content": "Mr. Tran Luu Quang concluded it [1]."},
    ]
    result = answer(deps, Question("What did he say about the growth rate?", history))
    assert result.standalone_question == "What did Tran Luu Quang say about the city's growth rate?"
    rewrite_prompt = llm.calls[0][0]["content"]
    assert "Mr. Tran Luu Quang concluded it [1]." in rewrite_prompt
    assert "What did Tran Luu Quang say" in llm.calls[1][-1]["content"]
    assert "rewrite_s" in result.timings


def test_no_rewrite_without_history(fake_settings: Settings) -> None:
    deps, llm = _deps(fake_settings, "An answer [1].")
    result = answer(deps, "What did he say about the growth rate?")
    assert len(llm.calls) == 1 and "rewrite_s" not in result.timings


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("question", "message"),
    [("", "empty"), ("  \t\n ", "empty"), ("\x00\x01", "empty"), ("x" * 2001, "too long")],
)
def test_bad_questions_get_a_clear_message(
    fake_settings: Settings, question: str, message: str
) -> None:
    deps, llm = _deps(fake_settings)
    with pytest.raises(BotError, match=message):
        answer(deps, question)
    assert llm.calls == []


class _DyingChat(FakeChat):
    """Streams a few words, then the server goes away."""

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        yield "Nguyen Van Tung "
        yield "chairs [1]"
        raise BotError("Cannot reach the LLM at http://127.0.0.1:9/v1 (LLM_BASE_URL).")


@pytest.mark.reliability
def test_a_failing_llm_keeps_the_partial_answer_and_the_passages(fake_settings: Settings) -> None:
    deps = build_deps(fake_settings, llm=_DyingChat())
    result = answer(deps, "Who is the Chairman of the People's Committee?")
    assert result.error.startswith("Cannot reach the LLM at http://127.0.0.1:9/v1")
    assert result.text.startswith("Nguyen Van Tung chairs [1]")
    assert result.passages and not result.refused


def test_filters_restrict_language_article_and_date(fake_settings: Settings) -> None:
    deps, _ = _deps(fake_settings)
    retriever = deps.retriever
    hits, _ = retriever.search("Hai Phong", 10, Filters(lang=["fr"]))
    assert hits and {h.meta.lang for h in hits} == {"fr"}
    hits, _ = retriever.search("Hai Phong", 10, Filters(doc_ids=["004_7234e428cdcd5127"]))
    assert hits and {h.doc_id for h in hits} == {"004_7234e428cdcd5127"}
    hits, _ = retriever.search("Hai Phong", 10, Filters(date_from="2025-01-01"))
    assert hits and {h.doc_id for h in hits} == {"002_1ca994a0bc34cf02"}
    hits, _ = retriever.search("Hai Phong", 10, Filters(date_to="2020-01-01"))
    assert hits == []


def test_exact_codes_are_found_by_the_lexical_side(fake_settings: Settings) -> None:
    deps, _ = _deps(fake_settings)
    hits, _ = deps.retriever.search("7/NQ-CP", 3)
    assert "7/NQ-CP" in hits[0].text
    assert hits[0].lexical_rank == 1


def _hit(doc: str, story: str, index: int, n: int = 4) -> Hit:
    meta = PassageMeta(doc_id=doc, story_id=story, chunk_index=index, n_chunks=n)
    return Hit(f"{doc}:{index}", f"text {doc} {index}", meta, 0.0)


def test_translations_of_the_same_passage_are_folded() -> None:
    de, th, other = _hit("de", "s1", 1), _hit("th", "s1", 1), _hit("en", "s2", 1)
    far = _hit("th", "s1", 3)
    kept = fold_translations([de, other, th, far])
    assert kept == [de, other, far]
    assert de.alternatives == [th]


def test_a_short_reply_that_looks_like_a_refusal_start_is_still_shown(
    fake_settings: Settings,
) -> None:
    reply = (
        "I do not doubt it: Nguyen Van Tung is the Chairman of Hai Phong People's Committee [1]."
    )
    deps, _ = _deps(fake_settings, reply)
    events = list(stream_answer(deps, "Who is the Chairman of the People's Committee?"))
    result = events[-1].answer  # type: ignore[union-attr]
    assert not result.refused and result.text == reply
    assert "".join(e.text for e in events if isinstance(e, Token)).strip() == reply


@pytest.mark.reliability
def test_a_reply_that_cites_no_passage_is_replaced_by_the_refusal(fake_settings: Settings) -> None:
    deps, _ = _deps(fake_settings, "Hai Phong was founded by pirates in 1066.")
    result = answer(deps, "Who founded Hai Phong?")
    assert result.refused and result.guard == "uncited" and result.citations == []
    assert result.text.startswith("I don't know") and "pirates" not in result.text
    assert result.raw_text == "Hai Phong was founded by pirates in 1066."


def test_the_fake_model_keeps_a_follow_up_question_as_it_is(fake_settings: Settings) -> None:
    deps, llm = _deps(fake_settings)
    history = [
        {"role": "user", "content": "Who is the Chairman?"},
        {"role": "assistant", "content": "Nguyen Van Tung [1]."},
    ]
    result = answer(deps, Question("Where does the floating library moor?", history))
    assert result.standalone_question == "Where does the floating library moor?"
    asked = [purpose(c) for c in llm.calls]
    assert asked[:2] == ["rewrite", "answer"]  # the rewrite, then the answer
    # then, for the French words the fake quotes, a translation and a rewrite of the sentence
    assert set(asked[2:]) <= {"translate_terms", "one_language"}


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(shipped_index: tuple[Settings, Summary]) -> None:
    """The README's Python example, on the shipped corpus's index (the fake model answers:
    the example is about the calls, tests/test_e2e_llm.py about the real model)."""
    settings, _ = shipped_index
    done = run_documented_example(
        "README.md", "python example", 300, INDEX_DIR=str(settings.index_dir), LLM_BACKEND="fake"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cited = re.search(r"\[1\] \[\(1, (['\"]).+\1, '[a-z]{2}'\)\]$", done.stdout.strip())
    assert cited, done.stdout
