"""The scripted chat model (LLM_BACKEND=fake), for tests and UI development: it answers by
quoting its sources, without any model.

What it is asked for is read the way the prompts were written: each prompt file of `prompts/`
is turned into a pattern with its placeholders as groups, so the fake knows which prompt it
reads (a rewrite, a translation, an answer from passages or from an article) and the values
filled in, whatever the prompts' wording becomes.
"""

from __future__ import annotations

import re
import string
from collections import deque
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources

from bot.models.llm import Message
from bot.text.sentences import split_sentences


@cache
def _pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """prompts/<name>.txt (several: joined by a blank line, as the article prompt is) as a
    pattern: its text literal, each placeholder a group (one used twice in a file must hold the
    same value both times; those of a later file are named `<field>_<i>`)."""
    parts = []
    for i, name in enumerate(names):
        template = (resources.files("prompts") / f"{name}.txt").read_text(encoding="utf-8")
        seen: set[str] = set()
        parts.append("\n\n" if i else "")
        for literal, field, _, _ in string.Formatter().parse(template.strip()):
            parts.append(re.escape(literal))
            if field:
                group = f"{field}_{i}" if i else field
                parts.append(f"(?P={group})" if group in seen else f"(?P<{group}>.*?)")
                seen.add(group)
    return re.compile("".join(parts), re.S)


def filled(text: str, *names: str) -> dict[str, str] | None:
    """The values the prompt files `names` were filled with to give `text`; None when `text`
    was not written from them."""
    found = _pattern(names).fullmatch(text.strip())
    return found.groupdict() if found else None


def purpose(messages: list[Message]) -> str:
    """Which prompt `messages` were made from: "rewrite", "translate", "translate_terms",
    "one_language", "answer" (passages), "article", or "" for another."""
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    last = messages[-1]["content"]
    if filled(last, "rewrite"):
        return "rewrite"
    if filled(last, "translate"):
        return "translate"
    if filled(last, "translate_terms"):
        return "translate_terms"
    if filled(last, "one_language"):
        return "one_language"
    if system and filled(system, "answer_system"):
        return "answer"
    if system and filled(system, "article_system"):
        return "article"
    return ""


class FakeChat:
    """A scripted model: replies come from a queue, or, when it is empty, what its prompt asks
    for (`purpose`): a rewrite returns the last question unchanged, a translation the sentence
    unchanged after the language's name in brackets, foreign words to translate or a sentence
    to put in one language unchanged, an answer the first sentence of the first passage,
    citing it."""

    where = "the fake LLM (LLM_BACKEND=fake)"

    def __init__(self, replies: Iterable[str] = ()) -> None:
        self.replies: deque[str] = deque(replies)
        self.calls: list[list[Message]] = []

    def _reply(self, messages: list[Message]) -> str:
        self.calls.append(messages)
        if self.replies:
            return self.replies.popleft()
        last = messages[-1]["content"]
        asked = purpose(messages)
        if asked == "rewrite":
            return (filled(last, "rewrite") or {})["question"].strip()
        if asked == "translate":  # not a translation: the sentence as it was
            values = filled(last, "translate") or {}
            return f"({values['language']}) {values['text'].strip()}"
        if asked == "translate_terms":  # no translation either: the words as they were
            return (filled(last, "translate_terms") or {})["terms"].strip()
        if asked == "one_language":
            return (filled(last, "one_language") or {})["sentence"].strip()
        first = ""
        if asked == "answer":
            sources = (filled(last, "answer_user") or {}).get("sources", "")
            source = filled(re.split(r"\n\n(?=\[2\] )", sources)[0], "source")
            first = source["text"] if source else ""
        elif asked == "article":
            passages = (filled(last, "article", "article_question") or {}).get("passages", "")
            first = re.split(r"\n\n(?=\[2\] )", passages)[0].removeprefix("[1] ")
        sentences = [
            line[a:b].strip() for line in first.split("\n") for a, b in split_sentences(line)
        ]
        sentence = next((s for s in sentences if s.endswith((".", "!", "?"))), "")
        return f"{sentence} [1]" if sentence else "I don't know."

    def yes_probability(self, messages: list[Message]) -> float:
        """A queued reply ("yes", "no", or a probability), else yes."""
        self.calls.append(messages)
        if not self.replies:
            return 1.0
        said = self.replies.popleft().strip().lower()
        return 1.0 if said == "yes" else 0.0 if said == "no" else float(said)

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
