"""Split cleaned text into passages sized in the embedder's own tokens.

Passages end at sentence ends (Thai sentences found by pythainlp's CRF model, since Thai writes
no spaces between words) and, once they are long enough, at paragraph ends. A paragraph split
across passages repeats a little context. Every passage is an exact slice of the cleaned text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.text.sentences import spans_after, split_sentences
from bot.text.thai import has_thai, thai_words

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Passage:
    text: str
    start: int  # character offsets in the cleaned text
    end: int
    n_tokens: int


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    para: int


_SPLITTERS = [re.compile(r"(?<=[;:])\s+"), re.compile(r"(?<=,)\s+"), re.compile(r"(?<=\S)\s+")]


def _thai_words(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for word in thai_words(text, keep_whitespace=True):
        spans.append((pos, pos + len(word)))
        pos += len(word)
    return spans if pos == len(text) else []


def _fit(
    text: str, start: int, end: int, count: TokenCounter, size: int, level: int = 0
) -> list[tuple[int, int]]:
    """Split text[start:end] into spans of at most `size` tokens at the coarsest break that fits."""
    piece = text[start:end]
    if count(piece) <= size:
        return [(start, end)]
    if level < len(_SPLITTERS):
        parts = spans_after(piece, _SPLITTERS[level])
    elif level == len(_SPLITTERS):
        parts = _thai_words(piece) if has_thai(piece) else []
    else:  # no break at all: cut by characters
        step = max(1, len(piece) // 2)
        parts = [(0, step), (step, len(piece))]
    if len(parts) < 2:
        return _fit(text, start, end, count, size, level + 1)
    # Pack the parts greedily, then split any part that alone is still too long.
    packed: list[tuple[int, int]] = []
    for a, b in parts:
        a, b = start + a, start + b
        if packed and count(text[packed[-1][0] : b]) <= size:
            packed[-1] = (packed[-1][0], b)
        else:
            packed.append((a, b))
    out: list[tuple[int, int]] = []
    for a, b in packed:
        out.extend(
            _fit(text, a, b, count, size, level + 1) if count(text[a:b]) > size else [(a, b)]
        )
    return out


def _units(text: str, lang: str, count: TokenCounter, size: int) -> list[_Unit]:
    units: list[_Unit] = []
    offset = 0
    for para_index, paragraph in enumerate(text.split("\n\n")):
        for a, b in split_sentences(paragraph, lang):
            for s, e in _fit(paragraph, a, b, count, size):
                units.append(_Unit(offset + s, offset + e, para_index))
        offset += len(paragraph) + 2
    return units


def chunk_text(
    text: str,
    count: TokenCounter,
    size: int = 320,
    min_size: int = 200,
    overlap: int = 40,
    lang: str = "",
) -> list[Passage]:
    """Pack sentences into passages of at most `size` tokens (as `count` measures them)."""
    count = functools.lru_cache(maxsize=None)(count)  # spans are measured again as they grow
    units = _units(text, lang, count, size)
    passages: list[Passage] = []
    current: list[_Unit] = []

    def span(us: list[_Unit]) -> str:
        return text[us[0].start : us[-1].end]

    for unit in units:
        if current:
            new_para = unit.para != current[-1].para
            too_big = count(span([*current, unit])) > size
            if too_big or (new_para and count(span(current)) >= min_size):
                passages.append(_passage(text, current, count))
                current = [] if new_para else _overlap(current, unit, count, overlap, size, span)
        current.append(unit)
    if current:
        last = _passage(text, current, count)
        if (
            passages and last.n_tokens < min_size // 2
        ):  # fold a stray tail ("TB") into the passage before
            merged = _merge(text, passages[-1], last, count)
            if merged.n_tokens <= size:
                passages[-1] = merged
                return passages
        passages.append(last)
    return passages


def _merge(text: str, first: Passage, second: Passage, count: TokenCounter) -> Passage:
    body = text[first.start : second.end]
    return Passage(body, first.start, second.end, count(body))


def _overlap(
    previous: list[_Unit],
    unit: _Unit,
    count: TokenCounter,
    overlap: int,
    size: int,
    span: Callable[[list[_Unit]], str],
) -> list[_Unit]:
    """The trailing sentences of `previous` (at most `overlap` tokens) to repeat before `unit`."""
    carry: list[_Unit] = []
    for candidate in reversed(previous[1:]):
        trial = [candidate, *carry]
        if count(span(trial)) > overlap or count(span([*trial, unit])) > size:
            break
        carry = trial
    return carry


def _passage(text: str, units: list[_Unit], count: TokenCounter) -> Passage:
    start, end = units[0].start, units[-1].end
    # Trim white space so offsets point at the words themselves.
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    body = text[start:end]
    return Passage(body, start, end, count(body))
