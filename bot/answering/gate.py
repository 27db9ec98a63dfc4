"""Check before showing: a reply's text is held back while it streams until one of its
sentences is found supported by what the model read (bot.answering.support), and from then on
shown as it comes (a later sentence the check cannot support is marked once the reply is done).

A reply of which no sentence is supported is never shown as it streams: the pipeline then reads
again, differently, or withholds it (bot.answering.pipeline).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.text.sentences import answer_sentences


class SentenceGate:
    """Feed the text a reply shows; get back what may be shown now.

    `supported(sentence)` says whether a finished sentence (its markers included) rests on the
    passages; the last sentence of the text is checked only once another one follows it, or by
    the caller after the reply ends.
    """

    def __init__(self, supported: Callable[[str], bool]) -> None:
        self._supported = supported
        self._held = ""
        self._checked = 0  # sentences of `_held` already found unsupported
        self.open = False  # a sentence was supported: the rest is shown as it comes

    def feed(self, text: str) -> str:
        if self.open:
            return text
        self._held += text
        finished = answer_sentences(self._held)[:-1]  # the last one may go on
        for a, b in finished[self._checked :]:
            if self._supported(self._held[a:b]):
                self.open = True
                shown, self._held = self._held, ""
                return shown
            self._checked += 1
        return ""

    @property
    def held(self) -> str:
        """What was fed and not shown (all of it while the gate is shut)."""
        return self._held

    def release(self) -> str:
        """Everything held, for the caller to show once the whole reply was found supported."""
        shown, self._held = self._held, ""
        self.open = True
        return shown
