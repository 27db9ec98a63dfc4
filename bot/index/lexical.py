"""Lexical retrieval: BM25 (bm25s) over the indexed passages.

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

import numpy as np

from bot.text.thai import THAI_RUN, thai_words

_TOKEN = re.compile(r"\w+(?:[/\-.]\w+)*")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def _stopwords() -> frozenset[str]:
    import bm25s.stopwords as lists
    from pythainlp.corpus import thai_stopwords

    words: set[str] = set(thai_stopwords())
    for name in dir(lists):
        if name.startswith("STOPWORDS_"):
            words.update(_fold(w) for w in getattr(lists, name))
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
    for match in _TOKEN.finditer(_fold(text)):
        token = match.group()
        tokens.append(token)
        parts = re.split(r"[/\-.]", token)
        if len(parts) > 1:
            tokens.extend(p for p in parts if p)
    return tokens


def _thai_tokens(text: str) -> list[str]:
    return [w for w in thai_words(text) if w.strip()]


class LexicalIndex:
    """BM25 over passages given as token-id lists, stored as postings: for each term, the
    passages holding it and their BM25 weight (CSC arrays: `indptr`, `rows`, `weights`).

    Scoring a question gathers the postings of its terms: no per-query work over the corpus.
    Weights follow BM25 (k1=1.5, b=0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5))).
    """

    K1, B = 1.5, 0.75

    def __init__(
        self, vocab: dict[str, int], size: int, indptr: np.ndarray, rows: np.ndarray,
        weights: np.ndarray,
    ) -> None:  # fmt: skip
        self.vocab, self.size = vocab, size
        self.indptr, self.rows, self.weights = indptr, rows, weights

    @classmethod
    def build(cls, vocab: dict[str, int], offsets: np.ndarray, tokens: np.ndarray) -> LexicalIndex:
        """From every passage's token ids: passage i holds tokens[offsets[i]:offsets[i+1]]."""
        n, n_terms = len(offsets) - 1, max(len(vocab), 1)
        lengths = np.diff(offsets).astype(np.float64)
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
        pairs, tf = np.unique(tokens.astype(np.int64) * max(n, 1) + rows, return_counts=True)
        terms, rows = pairs // max(n, 1), pairs % max(n, 1)  # sorted by term, then passage
        df = np.bincount(terms, minlength=n_terms).astype(np.float64)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        avg = float(lengths.mean()) if n else 1.0
        norm = cls.K1 * (1 - cls.B + cls.B * lengths[rows] / max(avg, 1e-9))
        weights = tf * (cls.K1 + 1) / (tf + norm) * idf[terms]
        indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
        return cls(vocab, n, indptr, rows.astype(np.int32), weights.astype(np.float32))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for `query` (zeros when no query word is indexed)."""
        terms = sorted({self.vocab[t] for t in tokenize(query) if t in self.vocab})
        if not terms or not self.size:
            return np.zeros(self.size, dtype=np.float32)
        spans = [slice(self.indptr[t], self.indptr[t + 1]) for t in terms]
        rows = np.concatenate([self.rows[s] for s in spans])
        weights = np.concatenate([self.weights[s] for s in spans])
        return np.bincount(rows, weights=weights, minlength=self.size).astype(np.float32)
