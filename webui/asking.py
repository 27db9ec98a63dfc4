"""The one way a question of the app's is answered, from the page, /ask or /v1: wait until the
index is open, take one of the answer slots they share (Backend.answers), answer.

    with asking(backend, Question(text, turns)) as turn:
        result = turn.answer()             # or: for event in turn.stream(): ...

The page shows what a question waits for meanwhile (`turn.waiting()`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator

from bot.answering.pipeline import answer, stream_answer
from bot.answering.question import Question
from bot.answering.records import Answer, Event
from bot.deps import Deps
from webui.backend import Backend
from webui.serving import Ticket

POLL_S = 0.5  # how often `waiting()` says what it waits for


class Turn:
    """A question holding its place in the answer queue."""

    def __init__(self, backend: Backend, question: Question, ticket: Ticket) -> None:
        self.backend, self.question, self.ticket = backend, question, ticket

    def waiting(self) -> Iterator[str]:
        """What the question waits for, every POLL_S, until it may be answered (or the start-up
        failed: `stream()` then says why)."""
        backend = self.backend
        while not backend.ready.wait(POLL_S) and not backend.error:
            yield f"Preparing: {backend.stage}"
        while not backend.error and not self.ticket.wait(POLL_S):
            yield "Waiting for another answer…"

    def deps(self) -> Deps:
        """The parts answering needs, once the index is open and this question holds a slot
        (a BotError when the start-up failed)."""
        deps = self.backend.wait()
        self.ticket.wait()
        return deps

    def stream(self) -> Generator[Event, None, None]:
        return stream_answer(self.deps(), self.question)

    def answer(self) -> Answer:
        return answer(self.deps(), self.question)


@contextlib.contextmanager
def asking(backend: Backend, question: Question, bounded: bool = False) -> Iterator[Turn]:
    """A place in the answer queue for `question`, given back when the block ends. `bounded`:
    refused at once (webui.serving.QueueFull) when UI_QUEUE_SIZE questions wait already (the
    page and /ask are bounded by Gradio's queue instead)."""
    with backend.answers.ticket(bounded) as ticket:
        yield Turn(backend, question, ticket)
