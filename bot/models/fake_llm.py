"""The scripted chat model (LLM_BACKEND=fake), for tests and UI development: it answers by
quoting its sources, without any model."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator

from bot.models.llm import Message


class FakeChat:
    """A scripted model: replies come from a queue, or, when it is empty, an extractive answer
    that quotes the first source sentence and cites it (for UI development and load tests);
    asked to rewrite a follow-up question, it returns that question unchanged; asked to
    translate, the sentence unchanged after the language's name in brackets."""

    where = "the fake LLM (LLM_BACKEND=fake)"

    def __init__(self, replies: Iterable[str] = ()) -> None:
        self.replies: deque[str] = deque(replies)
        self.calls: list[list[Message]] = []

    def _reply(self, messages: list[Message]) -> str:
        self.calls.append(messages)
        if self.replies:
            return self.replies.popleft()
        last = re.search(r"^Last question: (.+)$", messages[-1]["content"], re.M)
        if last:
            return last.group(1).strip()
        translate = re.match(
            r"Translate this sentence .*? into (\w+)\..*?\n\n(.+)\Z", messages[-1]["content"], re.S
        )
        if translate:  # not a translation: the sentence as it was, with the language asked for
            return f"({translate.group(1)}) {translate.group(2).strip()}"
        source = re.search(r"^\[1\] .*\n([\s\S]*?)(?:\n\[2\] |\Z)", messages[-1]["content"], re.M)
        sentence = re.search(r"[^\s.!?][^\n]*?[.!?](?=\s|$)", source.group(1) if source else "")
        return f"{sentence.group(0)} [1]" if sentence else "I don't know."

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        reply = self._reply(messages)
        yield from re.findall(r"\S+\s*|\s+", reply)

    def complete(self, messages: list[Message], max_tokens: int) -> str:
        return self._reply(messages)

    def start(self) -> None:
        pass

    def problem(self) -> str:
        return ""

    def close(self) -> None:
        pass
