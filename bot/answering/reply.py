"""What of a streamed reply the user may see, decided as it streams and once it ends.

`ReplyFilter.feed(piece)` returns the text to show now: a reply that may still become a
refusal is held back, citation markers pointing at no passage the model read are dropped
(bot.answering.citations), and a reply that starts repeating the system prompt stops the
stream (`done`). `finish()` gives the verdict: the reply as shown, or a refusal, with the
reason when a guard replaced the reply (it cites nothing, or it leaks the prompt).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.answering.citations import CitationFilter, cited_numbers
from bot.answering.guard import LeakCheck
from bot.answering.refusal import is_refusal, may_become_refusal


@dataclass
class Verdict:
    refused: bool  # show the refusal instead of the reply
    text: str = ""  # the reply as shown, when not refused
    tail: str = ""  # the part of `text` that feed() has not returned yet
    cited: list[int] = field(default_factory=list)  # passage numbers, in order of first mention
    guard: str = ""  # why the reply was replaced: "uncited", "prompt leak"


class ReplyFilter:
    """The streaming checks on one reply, given how many passages the model read and the
    prompt it was given (the system prompt, and the user message with the sources)."""

    def __init__(
        self, n_passages: int, system_prompt: str, sources: str, need_citation: bool = True
    ) -> None:
        self.n_passages = n_passages
        self.need_citation = need_citation  # False: the citation check decides (support.py)
        self.raw = ""  # everything the model wrote
        self.done = False  # the rest of the reply is not needed: stop the stream
        self._shown = ""
        self._held = True  # held back while it may still be a refusal
        self._leak = LeakCheck(system_prompt, sources)
        self._citations = CitationFilter(n_passages)
        self._guard = ""

    def feed(self, piece: str) -> str:
        """Take the next piece of the reply; return the text to show now."""
        self.raw += piece
        if self._leak(self.raw):
            self._guard, self.done = "prompt leak", True
            return ""
        if self._held:
            if is_refusal(self.raw):
                self.done = True  # no need to hear the rest
                return ""
            if may_become_refusal(self.raw):
                return ""
            self._held, piece = False, self.raw
        text = self._citations.feed(piece)
        self._shown += text
        return text

    def finish(self, failed: bool = False) -> Verdict:
        """The verdict on the whole reply; `failed` when the stream broke off with an error
        (what was shown stays, and an empty reply is then no refusal)."""
        raw, guard = self.raw, self._guard
        refusal = is_refusal(raw)
        tail = ""
        if not guard and not refusal:
            tail = (self._citations.feed(raw) if self._held else "") + self._citations.flush()
        cited = [n for n in cited_numbers(self._shown + tail) if n <= self.n_passages]
        if not failed and raw.strip() and not refusal and not cited and self.need_citation:
            guard = guard or "uncited"  # an answer that rests on no source
        if guard or (not failed and (refusal or not raw.strip())):
            return Verdict(refused=True, guard=guard)
        return Verdict(refused=False, text=(self._shown + tail).strip(), tail=tail, cited=cited)
