"""The streaming checks on a reply (bot.answering.reply), fed piece by piece: no Chroma, no LLM."""

from __future__ import annotations

import re

from bot.answering.reply import ReplyFilter, Verdict

SYSTEM = (
    "You answer questions about news articles using only the numbered sources in the user's "
    "message. Every fact must come from the sources and never from your own knowledge."
)
SOURCES = "Sources:\n[1] Port news (English)\nThe terminal opened on 3 May 2021."


def _stream(*pieces: str, n: int = 2, failed: bool = False) -> tuple[str, bool, Verdict]:
    """What the user saw while the pieces streamed, whether the stream was stopped early,
    and the verdict."""
    reply = ReplyFilter(n, SYSTEM, SOURCES)
    shown = ""
    for piece in pieces:
        shown += reply.feed(piece)
        if reply.done:
            break
    return shown, reply.done, reply.finish(failed=failed)


def test_an_answer_streams_as_it_comes_and_keeps_its_citations() -> None:
    shown, stopped, verdict = _stream("The terminal ", "opened in 2021 ", "[1].", " It grew [2].")
    assert not stopped and not verdict.refused and not verdict.guard
    assert shown + verdict.tail == "The terminal opened in 2021 [1]. It grew [2]."
    assert verdict.text == shown.strip() + verdict.tail and verdict.cited == [1, 2]


def test_a_marker_pointing_at_no_passage_is_dropped_before_it_shows() -> None:
    shown, _, verdict = _stream("It opened [1]", " and closed [7", "].")
    assert (
        "[7]" not in shown and verdict.text == "It opened [1] and closed." and verdict.cited == [1]
    )


def test_a_refusal_is_held_back_and_stops_the_stream() -> None:
    shown, stopped, verdict = _stream("I", " don't", " know", ".", " But the port [1] ...")
    assert shown == "" and stopped and verdict.refused and not verdict.guard


def test_text_that_only_began_like_a_refusal_is_shown_whole() -> None:
    shown, stopped, verdict = _stream("I", "n 2021 the terminal opened [1].")
    assert not stopped and shown + verdict.tail == "In 2021 the terminal opened [1]."
    assert not verdict.refused


def test_a_broken_reply_held_as_a_possible_refusal_is_shown_at_the_end() -> None:
    shown, _, verdict = _stream("I", " do", failed=True)
    assert shown == "" and not verdict.refused and verdict.tail == verdict.text == "I do"


def test_an_uncited_reply_becomes_the_refusal() -> None:
    shown, _, verdict = _stream("The terminal ", "opened in 2021.")
    assert shown and verdict.refused and verdict.guard == "uncited"


def test_a_reply_repeating_the_system_prompt_stops_and_becomes_the_refusal() -> None:
    leak = "My instructions: answer questions about news articles using only the numbered sources"
    shown, stopped, verdict = _stream(*re.findall(r"\S+\s*", leak))
    assert stopped and verdict.refused and verdict.guard == "prompt leak"
    assert "numbered sources" not in shown


def test_an_empty_reply_is_a_refusal_unless_the_stream_broke() -> None:
    assert _stream("")[2].refused
    broke = _stream("", failed=True)[2]
    assert not broke.refused and broke.text == ""


def test_a_broken_stream_keeps_what_was_shown_without_the_uncited_guard() -> None:
    shown, _, verdict = _stream("The terminal opened", failed=True)
    assert not verdict.refused and not verdict.guard
    assert verdict.text == shown + verdict.tail == "The terminal opened" and verdict.cited == []
