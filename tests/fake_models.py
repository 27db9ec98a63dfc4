"""Fake models that fail or never end, for the chat and API tests (bot.models.llm.FakeChat is
the one that answers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from bot.errors import BotError
from bot.models.fake_llm import FakeChat
from bot.models.llm import Message


class Dying(FakeChat):
    """Writes a few words, then the server goes away."""

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        yield "The city wants to grow [1]. "
        raise BotError("The LLM at http://127.0.0.1:9/v1 (LLM_BASE_URL) stopped answering.")


class Silent(FakeChat):
    """Cannot be reached: fails before its first word."""

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        raise BotError("Cannot reach the LLM at http://127.0.0.1:9/v1.")
        yield ""  # a generator


class Endless(FakeChat):
    """Writes until its stream is closed; `closed` is set then."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = threading.Event()

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        try:
            yield self._reply(messages) + ". "  # a sentence of a passage: the check lets it by
            while True:
                yield "more [1] "
        finally:
            self.closed.set()
