"""Citation markers [n] in a streamed answer: keep those that point at a passage the model was
given, drop the rest before the user sees them; file each sentence of an answer
(bot.text.sentences.answer_sentences) under the passages it cites."""

from __future__ import annotations

import re

from bot.text.sentences import answer_sentences

_MARKER = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
_PARTIAL = re.compile(r"\[[\d\s,;]*")
_CITED = re.compile(r"\[(\d+)\]")
MARKER = re.compile(r"\s*\[(\d+)\]")  # one marker, with the space before it
MARKERS = re.compile(r"\s*\[\d+\](?:\s*[,;]?\s*\[\d+\])*")  # "[1]", "[1], [19]", "[2][3]"


class CitationFilter:
    """Feed streamed text; get back text whose markers all point at passages 1..n_valid.

    "[1, 3]" becomes "[1][3]"; a marker is held back until its closing bracket arrives, and
    so are trailing spaces, which go with a marker that is dropped.
    """

    def __init__(self, n_valid: int) -> None:
        self.valid = set(range(1, n_valid + 1))
        self._pending = ""

    def feed(self, text: str) -> str:
        self._pending += text
        out: list[str] = []
        while self._pending:
            start = self._pending.find("[")
            if start < 0:
                out.append(self._pending)
                self._pending = ""
                break
            out.append(self._pending[:start])
            rest = self._pending[start:]
            marker = _MARKER.match(rest)
            if marker:
                kept = self._kept(marker.group(1))
                if not kept and out and out[-1].endswith(" "):
                    out[-1] = out[-1].rstrip(" ")
                out.append(kept)
                self._pending = rest[marker.end() :]
            elif _PARTIAL.fullmatch(rest) and len(rest) < 24:
                self._pending = rest  # wait for the rest of the marker
                break
            else:
                out.append("[")
                self._pending = rest[1:]
        text = "".join(out)
        # Hold trailing spaces back: if a dropped marker follows, they go with it.
        held = len(text) - len(text.rstrip(" "))
        if held:
            text, self._pending = text[:-held], text[-held:] + self._pending
        return text

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return re.sub(r" *\[[\d\s,;]*$", "", rest)  # an unfinished marker points nowhere

    def _kept(self, numbers: str) -> str:
        seen: list[int] = []
        for n in (int(x) for x in re.findall(r"\d+", numbers)):
            if n in self.valid and n not in seen:
                seen.append(n)
        return "".join(f"[{n}]" for n in seen)


def cited_numbers(text: str) -> list[int]:
    """Distinct citation numbers in order of first appearance."""
    numbers: list[int] = []
    for n in (int(x) for x in _CITED.findall(text)):
        if n not in numbers:
            numbers.append(n)
    return numbers


def claims_by_source(answer: str) -> dict[int, list[str]]:
    """Each sentence of the answer, without its markers, under every [n] it cites.

    A sentence with no marker of its own belongs to the next marker of its paragraph (models
    often cite once at the end of a paragraph); a trailing uncited sentence stays unfiled.
    """
    claims: dict[int, list[str]] = {}
    waiting: list[str] = []
    last = 0
    for a, b in answer_sentences(answer):
        if "\n" in answer[last:a]:  # a new line after a finished sentence: a new paragraph
            waiting = []
        last = b
        sentence = answer[a:b]
        numbers = list(dict.fromkeys(int(n) for n in MARKER.findall(sentence)))
        claim = MARKER.sub("", sentence).strip()
        if not numbers:
            waiting = [*waiting, claim] if claim else waiting
            continue
        for n in numbers:
            claims.setdefault(n, []).extend([*waiting, claim] if claim else waiting)
        waiting = []
    return claims
