"""Evidence in the reader's language: a sentence of an article translated by the configured
LLM on request (the sources panel's "Show in English"), cached per sentence and language; a
sentence of the stored translation of its article (bot.answering.pivot) is not asked for.

The answer never waits for it: a translation is asked for only after the answer is written,
and the caller gives it an answer slot (the embedded LLM has one).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from bot.answering.pivot import translate_sentence
from bot.errors import BotError
from bot.models.llm import ChatModel
from bot.text.language import NAMES

MAX_CHARS = 1500  # a highlighted sentence or two; the panel never asks for more
CACHED = 2048  # translations kept, least recently used out


class Translations:
    """Translations asked for so far, per (sentence, language)."""

    def __init__(self, size: int = CACHED) -> None:
        self._done: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def cached(self, text: str, target: str) -> str | None:
        with self._lock:
            key = (text.strip(), target)
            if key in self._done:
                self._done.move_to_end(key)
            return self._done.get(key)

    def translate(self, llm: ChatModel, text: str, source: str, target: str) -> str:
        """`text` (in `source`) in `target`, from the cache or the model. BotError for what
        cannot be translated or a model that gave nothing."""
        check(text, source, target)
        found = self.cached(text, target)
        if found is not None:
            return found
        reply = translate_sentence(llm, text, source, target)
        if not reply:
            raise BotError("The model gave no translation; try again.")
        with self._lock:
            self._done[(text.strip(), target)] = reply
            while len(self._done) > self._size:
                self._done.popitem(last=False)
        return reply


def check(text: str, source: str, target: str) -> None:
    if not text.strip():
        raise BotError("There is nothing to translate.")
    if len(text) > MAX_CHARS:
        raise BotError(f"Only up to {MAX_CHARS} characters are translated at once.")
    if target not in NAMES:
        raise BotError(f"Cannot translate into {target!r}: not a language the bot knows.")
    if source == target:
        raise BotError("The sentence is already in that language.")
