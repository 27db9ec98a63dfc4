"""Lexical retrieval's words: what BM25 (bot.index.search_state) counts in a passage or question.

Tokens are lower-cased and stripped of accents, so "Hải Phòng" matches "Hai Phong"; Thai,
written without spaces between words, is segmented with pythainlp's dictionary tokenizer;
codes such as "7/NQ-CP" are kept whole and also split into their parts. Stop words of every
language are dropped: in a multilingual index, "the" or "der" mostly says which language a
passage is in, which would pull a question towards passages in its own language.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from bot.text.thai import THAI_RUN, thai_words

_TOKEN = re.compile(r"\w+(?:[/\-.]\w+)*")


def fold(text: str) -> str:
    """Lower-cased, without accents ("Hải Phòng" is "hai phong")."""
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def _stopwords() -> frozenset[str]:
    import bm25s.stopwords as lists
    from pythainlp.corpus import thai_stopwords

    words: set[str] = set(thai_stopwords())
    for name in dir(lists):
        if name.startswith("STOPWORDS_"):
            words.update(fold(w) for w in getattr(lists, name))
    return frozenset(words)


def tokenize(text: str) -> list[str]:
    stop = _stopwords()
    return [t for t in _tokens(text) if t not in stop]


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    for thai in THAI_RUN.finditer(text):
        tokens.extend(_latin_tokens(text[pos : thai.start()]))
        tokens.extend(_thai_tokens(thai.group()))
        pos = thai.end()
    tokens.extend(_latin_tokens(text[pos:]))
    return tokens


def _latin_tokens(text: str) -> list[str]:
    tokens = []
    for match in _TOKEN.finditer(fold(text)):
        token = match.group()
        tokens.append(token)
        parts = re.split(r"[/\-.]", token)
        if len(parts) > 1:
            tokens.extend(p for p in parts if p)
    return tokens


def _thai_tokens(text: str) -> list[str]:
    return [w for w in thai_words(text) if w.strip()]
