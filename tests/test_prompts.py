"""The rendered prompts are pinned: a wording change shows up as a diff of tests/snapshots/.

To accept a deliberate change: UPDATE_SNAPSHOTS=1 pytest tests/test_prompts.py, then review
the diff of tests/snapshots/ like any other change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.answering.prompts import build_messages, render
from bot.retrieval.records import Hit, PassageMeta
from webui.translate import translation_messages

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


def test_a_missing_variable_fails_loudly() -> None:
    with pytest.raises(KeyError, match="missing \\['question'\\]"):
        render("rewrite", history="")
