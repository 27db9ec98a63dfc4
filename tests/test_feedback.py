"""Ratings and regenerate in the chat (webui/feedback.py, webui/chat.py), and
`python -m eval feedback`, which turns rated answers into questions the eval accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import gradio as gr

from bot.ratings import latest_ratings
from eval.feedback import proposed_facts
from eval.questions import load_questions
from tests.conftest import ROOT
from tests.fake_models import Dying
from webui.backend import Backend
from webui.chat import make_respond, regenerate, unlinked
from webui.feedback import make_comment, make_rate

QUESTION = "What did To Lam ask of Hai Phong?"


def _ask(
    backend: Backend, question: str, chat: list[Any], turns: list[Any], records: dict[int, Any]
) -> tuple[list[Any], list[Any], dict[int, Any]]:
    """The chat's last frame, and the records as the page's state keeps them."""
    for frame in make_respond(backend)(question, chat, turns, records, 5, [], False):
        chat = frame[0]
        turns = frame[2] if isinstance(frame[2], list) else turns
        records = frame[4] if "__type__" not in frame[4] else records  # else gr.skip()
    return chat, turns, records


def _like(index: int, liked: bool | str) -> gr.LikeData:
    return gr.LikeData(None, {"index": index, "value": [], "liked": liked})


def test_a_rating_and_its_comment_are_stored_with_the_whole_answer(backend: Backend) -> None:
    _, turns, records = _ask(backend, QUESTION, [], [], {})
    assert list(records) == [1]  # the answer's place in the chat
    box, _, rated = make_rate(backend.feedback)(records, _like(1, False))
    assert box.visible and "👎" in box.label and rated == (1, False)
    make_comment(backend.feedback)("It should name the five tasks.", rated, records)
    lines = backend.settings.feedback_path.read_text(encoding="utf-8").splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["rating"] == second["rating"] == "down"
    assert (first["comment"], second["comment"]) == ("", "It should name the five tasks.")
    assert second["question"] == QUESTION and second["answer"] == turns[-1]["content"]
    assert second["answer_id"] == first["answer_id"]
    assert second["passages"][0]["text"] and second["citations"][0]["n"] == 1
    assert second["settings"]["top_k"] == 5 and second["settings"]["llm_backend"] == "fake"
    [latest] = latest_ratings(backend.settings.feedback_path)
    assert latest["comment"] == "It should name the five tasks."


def test_a_rating_taken_back_or_cut_short_by_a_crash_is_not_counted(backend: Backend) -> None:
    *_, records = _ask(backend, QUESTION, [], [], {})
    rate = make_rate(backend.feedback)
    rate(records, _like(1, True))
    box, _, rated = rate(records, _like(1, ""))  # the thumb clicked again
    assert not box.visible and rated is None
    with open(backend.settings.feedback_path, "a", encoding="utf-8") as f:
        f.write('{"answer_id": "cut sho')  # a crash mid-line
    assert latest_ratings(backend.settings.feedback_path) == []


def test_an_answer_that_did_not_finish_cannot_be_rated(backend: Backend) -> None:
    *_, rated = make_rate(backend.feedback)({}, _like(1, True))
    assert rated is None and not backend.settings.feedback_path.exists()


def test_regenerate_asks_the_last_question_again_without_its_answer(backend: Backend) -> None:
    chat, turns, records = _ask(backend, QUESTION, [], [], {})
    chat, turns, records = _ask(backend, "And its port?", chat, turns, records)
    assert len(chat) == 4 and len(turns) == 4 and sorted(records) == [1, 3]
    retry = gr.RetryData(None, {"index": 2, "value": chat[2]["content"]})
    chat, turns, records, question = regenerate(chat, turns, records, retry)
    assert question == "And its port?"  # as asked, not as searched
    assert len(chat) == 2 and len(turns) == 2 and list(records) == [1]
    chat, turns, records = _ask(backend, question, chat, turns, records)
    assert [m["role"] for m in chat] == ["user", "assistant"] * 2
    assert unlinked(chat[-1]["content"]) == turns[-1]["content"] and sorted(records) == [1, 3]


def test_regenerating_an_answer_that_failed_keeps_the_conversation_before_it(
    backend: Backend,
) -> None:
    chat, turns, records = _ask(backend, QUESTION, [], [], {})
    assert backend.deps is not None
    backend.deps.llm = Dying()
    chat, turns, records = _ask(backend, QUESTION, chat, turns, records)  # asked again: fails
    assert len(chat) == 4 and len(turns) == 2 and "⚠️" in chat[-1]["content"]
    retry = gr.RetryData(None, {"index": 2, "value": chat[2]["content"]})
    chat, kept, _, question = regenerate(chat, turns, records, retry)
    assert kept == turns and len(chat) == 2 and question == QUESTION  # the first turn stays


def test_proposed_facts_are_the_answers_names_and_figures_the_question_lacks() -> None:
    answer = "Deputy Prime Minister Ho Duc Phoc attended [1]. The plan runs to 2045 [2]."
    assert proposed_facts(answer, "Who attended the meeting with To Lam?") == [
        "Deputy Prime Minister Ho Duc Phoc",
        "2045",
    ]
    assert proposed_facts("It was in 2045.", "What happens in 2045?") == []


def _feedback(args: list[str], answers: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval", "feedback", *args],
        input=answers,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rated_answers_become_a_question_file_the_eval_accepts(
    backend: Backend, tmp_path: Path
) -> None:
    chat, turns, records = _ask(backend, QUESTION, [], [], {})
    chat, turns, records = _ask(backend, "Who chairs the People's Committee?", chat, turns, records)
    rate = make_rate(backend.feedback)
    rate(records, _like(1, True))
    rate(records, _like(3, False))
    source, out = backend.settings.feedback_path, tmp_path / "from-users.jsonl"
    # the first: proposals taken as they are; the second: the user says what is right
    done = _feedback(
        ["--from", str(source), "--out", str(out)], "\n\n\n\ny\ny\nNguyen Van Tung|Tung\n1\n"
    )
    assert done.returncode == 0, done.stderr
    first, second = load_questions(out)
    assert first.question == QUESTION and first.answerable and first.expected_docs
    assert first.gold and all(g in _passages(records[1]) for g in first.gold)
    assert second.facts == [["Nguyen Van Tung", "Tung"]] and second.history == turns[:2]
    checked = subprocess.run(
        [sys.executable, "-m", "eval", "validate", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0 and "2 questions (2 answerable), valid" in checked.stdout
    again = _feedback(["--from", str(source), "--out", str(out), "--yes"], "")
    assert "0 rated answers not yet in" in again.stdout  # nothing is added twice


def _passages(record: dict[str, Any]) -> str:
    return "\n".join(p["text"] for p in record["passages"])
