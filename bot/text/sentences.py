"""Sentence splitting for every language the corpus has: abbreviation-aware rules, and for
Thai pythainlp's CRF model; the sentences of an article (`split_sentences`, `sentence_spans`)
and of an answer, its citation markers included (`answer_sentences`), by the same
abbreviations. Spans are character offsets, so callers keep exact slices."""

from __future__ import annotations

import re
from itertools import pairwise

from bot.text.thai import is_thai, thai_sentences

# Words after which a full stop does not end the sentence.
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "assoc",
    "no",
    "nos",
    "nr",
    "st",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "z.b",
    "u.a",
    "bzw",
    "ca",
    "vgl",
    "mme",
    "mlle",
    "m",
    "n°",
    "art",
    "str",
    "gen",
    "col",
    "sen",
}
# an answer's sentence ends at . ! ? followed by space, a marker or the end ("gov.vn", "3.5" go
# on), its markers ("[1]", "[1], [2]") with it; a list item at the end of its line
_ANSWER_SENTENCE = re.compile(
    r"(?:[^.!?。\n]|[.!?](?=[^\s\[.!?]))*(?:[.!?。]+(?:\s*[,;]?\s*\[\d+\])*|\n|$)"
)
_ANSWER_MARKER = re.compile(r"\[\d+\]")
_BOUNDARY = re.compile(r"[.!?…]+[\"'”»)\]]*\s+(?=[\"'“«(\[]?[\w])")


def split_sentences(paragraph: str, lang: str = "") -> list[tuple[int, int]]:
    """Sentence spans (start, end) in `paragraph`; they cover it without gaps."""
    if is_thai(paragraph):
        return _thai_spans(paragraph)
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(paragraph):
        before = paragraph[start : match.start()].split()
        word = before[-1].lower().rstrip(".") if before else ""
        nxt = paragraph[match.end() : match.end() + 1]
        if is_abbreviation(word):
            continue
        if lang == "de" and word.isdigit():  # German ordinals: "zum 70. Jahrestag"
            continue
        if not (nxt.isupper() or nxt.isdigit() or not nxt.isalpha()):
            continue
        spans.append((start, match.end()))
        start = match.end()
    if start < len(paragraph):
        spans.append((start, len(paragraph)))
    return spans


def is_abbreviation(word: str) -> bool:
    """Whether a full stop after `word` ("Mr", "z.B", "M", a single letter) ends no sentence."""
    word = word.lower().rstrip(".")
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def answer_sentences(answer: str) -> list[tuple[int, int]]:
    """Offsets of each sentence or list item of an answer, markers included, blank ones left
    out; a piece ending with an abbreviation ("Mr.", "No.") goes on into the next."""
    spans: list[tuple[int, int]] = []
    glue = False
    for match in _ANSWER_SENTENCE.finditer(answer):
        piece = match.group(0)
        if not piece.strip():
            continue
        if glue and spans:
            spans[-1] = (spans[-1][0], match.end())
        else:
            spans.append(match.span())
        words = piece.rstrip().split()
        glue = (
            piece.rstrip().endswith(".")
            and bool(words)
            and is_abbreviation(words[-1])
            and not _ANSWER_MARKER.search(piece)
        )
    return spans


def sentence_spans(text: str, lang: str = "") -> list[tuple[int, int]]:
    """(start, end) of each sentence of a multi-line text, white space trimmed, empty ones
    left out."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for line in text.split("\n"):
        for start, end in split_sentences(line, lang):
            piece = line[start:end]
            left = len(piece) - len(piece.lstrip())
            right = len(piece.rstrip())
            if right > left:
                spans.append((offset + start + left, offset + start + right))
        offset += len(line) + 1
    return spans


def spans_after(text: str, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """Pieces of `text` that end just after each separator match."""
    cuts = [m.end() for m in separator.finditer(text) if 0 < m.end() < len(text)]
    bounds = [0, *cuts, len(text)]
    return [(a, b) for a, b in pairwise(bounds) if a < b]


def _thai_spans(paragraph: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos = 0
    for sentence in thai_sentences(paragraph):
        found = paragraph.find(sentence, pos)
        if found < 0:  # the tokenizer altered the text: fall back to spaces
            return spans_after(paragraph, re.compile(r"(?<=\S)\s+"))
        spans.append((pos, found + len(sentence)))
        pos = found + len(sentence)
    if pos < len(paragraph):
        spans.append((pos, len(paragraph)))
    return [s for s in spans if paragraph[s[0] : s[1]].strip()] or [(0, len(paragraph))]
