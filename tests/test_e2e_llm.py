"""End to end with the real embedded LLM (Qwen2.5-Coder-1.5B via llama.cpp on 127.0.0.1)
over the shipped corpus indexed with the real embedder. About a minute on 2 cores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.answering.pipeline import answer
from bot.deps import Deps, build_deps
from bot.settings import Settings
from bot.text.language import detect_question_language
from ingest.pipeline import Summary

pytestmark = pytest.mark.system  # `make check` leaves it out


@pytest.fixture(scope="module")
def real_deps(shipped_index: tuple[Settings, Summary]) -> Iterator[Deps]:
    settings = shipped_index[0].model_copy(update={"llm_backend": "local", "llm_base_url": None})
    deps = build_deps(settings)
    yield deps
    deps.close()


def test_cross_lingual_question_is_answered_in_english_with_a_french_citation(
    real_deps: Deps,
) -> None:
    result = answer(real_deps, "What did To Lam ask of Hai Phong?")
    assert not result.refused and not result.error, result.text
    assert detect_question_language(result.text) == "en", result.text
    assert "003_b526725865409856" in {c.doc_id for c in result.citations}, result.text
    assert result.timings["first_token_s"] > 0


def test_off_corpus_question_is_refused(real_deps: Deps) -> None:
    result = answer(real_deps, "Who won the 2022 FIFA World Cup?")
    assert result.refused, result.text
    assert result.text == "I don't know: the indexed articles do not say."
    assert result.citations == []
