"""A segment of the search state: what retrieval needs about a set of passages beside their
vectors, and which articles it retires from the segments before it.

The search state is a list of segments, oldest first (bot.index.search_state). Ingesting a
batch of articles adds one small segment: their passages' filter columns (id, language,
article, date), their term frequencies and lengths for BM25, the article ids it replaces (whose
passages in earlier segments stop counting) and the change it makes to each language's vector
moments (its passages' vectors added, the replaced ones' taken away). BM25 weights are not stored:
they depend on the whole index (document frequencies, average length), so they are computed
per query from the live postings. Segments combine into one without reading Chroma again.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import IO

import numpy as np

FORMAT = "3"  # bump when a segment's contents change: every state is then rebuilt once


@dataclass
class LangStats:
    """Mean and covariance of one language's passage vectors: the mean and variance of a
    query's cosine similarity to that language's passages follow from them exactly."""

    mean: np.ndarray
    cov: np.ndarray

    def zscore(self, vector: np.ndarray, sims: np.ndarray) -> np.ndarray:
        std = float(np.sqrt(max(float(vector @ self.cov @ vector), 1e-12)))
        return (sims - float(vector @ self.mean)) / std


@dataclass
class Moments:
    """Per language: how many vectors, their sum and the sum of their outer products. Signed,
    so that a segment can take away the vectors of the passages it replaces."""

    n: dict[str, int] = field(default_factory=dict)
    s1: dict[str, np.ndarray] = field(default_factory=dict)
    s2: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, langs: np.ndarray, vectors: np.ndarray, sign: int = 1) -> Moments:
        out = cls()
        vectors = np.asarray(vectors, dtype=np.float64)
        for lang in sorted(set(langs.tolist())):
            rows = vectors[langs == lang]
            out.n[lang] = sign * len(rows)
            out.s1[lang] = sign * rows.sum(axis=0)
            out.s2[lang] = sign * (rows.T @ rows)
        return out

    def __add__(self, other: Moments) -> Moments:
        out = Moments(dict(self.n), dict(self.s1), dict(self.s2))
        for lang, n in other.n.items():
            if lang in out.n:
                out.n[lang] += n
                out.s1[lang] = out.s1[lang] + other.s1[lang]
                out.s2[lang] = out.s2[lang] + other.s2[lang]
            else:
                out.n[lang], out.s1[lang], out.s2[lang] = n, other.s1[lang], other.s2[lang]
        return out

    def stats(self) -> dict[str, LangStats]:
        """Mean and covariance of each language that has passages."""
        out = {}
        for lang, n in self.n.items():
            if n <= 0:
                continue
            mean = self.s1[lang] / n
            if n > 1:
                cov = (self.s2[lang] - n * np.outer(mean, mean)) / (n - 1)
            else:
                cov = np.eye(len(mean))
            out[lang] = LangStats(mean.astype(np.float32), cov.astype(np.float32))
        return out


@dataclass(frozen=True)
class Postings:
    """A segment's postings by term (CSC: `terms` sorted, rows of term t are
    rows[indptr[t]:indptr[t + 1]] with their term frequency tf): all a search state keeps of
    a segment besides the columns it concatenates."""

    terms: np.ndarray
    indptr: np.ndarray
    rows: np.ndarray
    tf: np.ndarray

    def find(self, words: list[str]) -> list[tuple[int, slice]]:
        """(index in `words`, span of its postings) of each of the sorted `words` indexed here."""
        found = np.searchsorted(self.terms, words)
        return [
            (k, slice(int(self.indptr[at]), int(self.indptr[at + 1])))
            for k, (word, at) in enumerate(zip(words, found, strict=True))
            if at < len(self.terms) and self.terms[at] == word
        ]


@dataclass
class Segment:
    """Passages in rows (grouped by article) and postings by term (CSC: `terms` sorted, rows of
    term t are rows[indptr[t]:indptr[t + 1]] with their term frequency tf)."""

    ids: np.ndarray  # object: passage ids
    lang: np.ndarray  # str
    doc_id: np.ndarray  # object
    date: np.ndarray  # str, "" when unknown
    lengths: np.ndarray  # int32: tokens per passage
    terms: np.ndarray  # str, sorted
    indptr: np.ndarray  # int64
    rows: np.ndarray  # int32
    tf: np.ndarray  # uint16
    removes: np.ndarray  # object: articles whose rows in earlier segments are retired
    moments: Moments
    nonces: list[str] = field(default_factory=list)  # the writes (intents) it completes
    # the signed vectors the moments were summed from (languages, vectors, signs), stored
    # instead of the sums when smaller (a segment of a few articles)
    basis: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(
        cls,
        ids: list[str],
        tokens: list[list[str]],
        metas: list[dict[str, str]],
        moments: Moments,
        removes: list[str],
        nonces: list[str] | None = None,
        basis: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> Segment:
        """From every passage's tokens (bot.index.lexical.tokenize) and metadata."""
        flat = [t for toks in tokens for t in toks]
        terms, term_ids = np.unique(np.array(flat, dtype=str), return_inverse=True)
        lengths = np.array([len(t) for t in tokens], dtype=np.int32)
        rows = np.repeat(np.arange(len(tokens), dtype=np.int64), lengths)
        indptr, post_rows, tf = _postings(term_ids.astype(np.int64), rows, len(terms), len(ids))

        def column(name: str, dtype: type = str) -> np.ndarray:
            return np.array([str(m.get(name) or "") for m in metas], dtype=dtype)

        return cls(
            np.array(ids, dtype=object),
            column("lang"),
            column("doc_id", object),
            column("date"),
            lengths,
            terms,
            indptr,
            post_rows,
            tf,
            np.array(sorted(set(removes)), dtype=object),
            moments,
            list(nonces or []),
            basis,
        )

    def postings(self) -> Postings:
        return Postings(self.terms, self.indptr, self.rows, self.tf)

    # -- bytes -------------------------------------------------------------------------------
    def dumps(self) -> bytes:
        langs = sorted(self.moments.n)
        arrays: dict[str, np.ndarray] = {
            "format": np.array([FORMAT]),
            "ids": self.ids.astype(str),
            "lang": self.lang,
            "doc_id": self.doc_id.astype(str),
            "date": self.date,
            "lengths": self.lengths,
            "terms": self.terms,
            "indptr": self.indptr,
            "rows": self.rows,
            "tf": self.tf,
            "removes": self.removes.astype(str),
            "nonces": np.array(self.nonces, dtype=str),
            "m_langs": np.array(langs, dtype=str),
            "m_n": np.array([self.moments.n[x] for x in langs], dtype=np.int64),
        }
        # a few articles' vectors take less room than their languages' sums of outer products
        if (
            self.basis is not None
            and len(self.basis[1]) < max(len(langs), 1) * self.basis[1].shape[1]
        ):
            arrays["b_langs"], arrays["b_vectors"], arrays["b_signs"] = self.basis
        else:
            for n, lang in enumerate(langs):
                arrays[f"s1_{n}"] = self.moments.s1[lang]
                arrays[f"s2_{n}"] = _upper(self.moments.s2[lang])
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def loads(cls, raw: bytes | IO[bytes], postings: bool = True) -> Segment:
        """From `dumps`' bytes (or a file holding them, read without another copy); without
        `postings`, its postings are left empty, unread (bot.index.postings_cache maps them)."""
        with np.load(io.BytesIO(raw) if isinstance(raw, bytes) else raw, allow_pickle=False) as z:
            if str(z["format"][0]) != FORMAT:
                raise ValueError(f"segment format {z['format'][0]}, expected {FORMAT}")
            langs = [str(x) for x in z["m_langs"]]
            basis = None
            if "b_vectors" in z:
                basis = (z["b_langs"], z["b_vectors"], z["b_signs"])
                moments = moments_of(*basis)
            else:
                moments = Moments(
                    {x: int(n) for x, n in zip(langs, z["m_n"], strict=True)},
                    {x: z[f"s1_{n}"] for n, x in enumerate(langs)},
                    {x: _full(z[f"s2_{n}"]) for n, x in enumerate(langs)},
                )
            terms, indptr, rows, tf = (
                (z["terms"], z["indptr"], z["rows"], z["tf"])
                if postings
                else (
                    np.zeros(0, str),
                    np.zeros(1, np.int64),
                    np.zeros(0, np.int32),
                    np.zeros(0, np.uint16),
                )
            )
            return cls(
                z["ids"].astype(object),
                z["lang"],
                z["doc_id"].astype(object),
                z["date"],
                z["lengths"],
                terms,
                indptr,
                rows,
                tf,
                z["removes"].astype(object),
                moments,
                [str(x) for x in z["nonces"]],
                basis,
            )


def combine(segments: list[Segment], first: bool) -> Segment:
    """One segment equal to `segments` (oldest first) applied in turn. Rows retired by a later
    segment of the group are dropped; with `first` (the group starts the state) nothing
    precedes it, so no retirement is kept. Postings are merged by term number, never as a
    string per posting: a million passages hold ~90 million postings."""
    keep_parts, offsets, total = [], [], 0
    for n, seg in enumerate(segments):
        later = [s.removes for s in segments[n + 1 :]]
        retired = np.concatenate(later) if later else np.zeros(0, dtype=object)
        keep_parts.append(~_member(seg.doc_id, retired))
        offsets.append(total)
        total += len(seg)
    keep = np.concatenate(keep_parts) if keep_parts else np.zeros(0, dtype=bool)
    renumber = np.cumsum(keep) - 1
    vocabulary = (
        np.unique(np.concatenate([s.terms for s in segments])) if segments else (np.zeros(0, str))
    )
    terms_l, rows_l, tf_l = [], [], []
    for seg, offset in zip(segments, offsets, strict=True):
        local = np.searchsorted(vocabulary, seg.terms).astype(np.int32)
        term_ids = np.repeat(local, np.diff(seg.indptr))
        rows = seg.rows.astype(np.int64) + offset
        alive = keep[rows]
        terms_l.append(term_ids[alive])
        rows_l.append(renumber[rows[alive]].astype(np.int32))
        tf_l.append(seg.tf[alive])
    term_ids = np.concatenate(terms_l) if terms_l else np.zeros(0, np.int32)
    # stable: within a term, rows stay ascending (each segment's are, and offsets grow)
    order = np.argsort(term_ids, kind="stable")
    counts = np.bincount(term_ids, minlength=len(vocabulary))
    used = counts > 0  # terms whose every posting was retired go
    indptr = np.concatenate([[0], np.cumsum(counts[used])]).astype(np.int64)
    rows_out = (np.concatenate(rows_l) if rows_l else np.zeros(0, np.int32))[order]
    tf_out = (np.concatenate(tf_l) if tf_l else np.zeros(0, np.uint16))[order]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(s, name) for s in segments])[keep]

    moments = Moments()
    for seg in segments:
        moments = moments + seg.moments
    removes = [] if first else sorted({str(d) for s in segments for d in s.removes})
    return Segment(
        cat("ids"),
        cat("lang"),
        cat("doc_id"),
        cat("date"),
        cat("lengths"),
        vocabulary[used],
        indptr,
        rows_out,
        tf_out.astype(np.uint16),
        np.array(removes, dtype=object),
        moments,
    )


def moments_of(langs: np.ndarray, vectors: np.ndarray, signs: np.ndarray) -> Moments:
    """The moments of vectors counted with a sign each (+1 added, -1 taken away)."""
    plus, minus = signs > 0, signs < 0
    return Moments.of(langs[plus], vectors[plus]) + Moments.of(langs[minus], vectors[minus], -1)


def _postings(
    term_ids: np.ndarray, rows: np.ndarray, n_terms: int, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSC postings (indptr, rows, tf) from one (term, row) pair per token."""
    width = max(n_rows, 1)
    pairs, tf = np.unique(term_ids * width + rows, return_counts=True)
    terms = pairs // width
    counts = np.bincount(terms, minlength=n_terms)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, (pairs % width).astype(np.int32), np.minimum(tf, 65535).astype(np.uint16)


def _member(values: np.ndarray, of: np.ndarray) -> np.ndarray:
    if not len(of) or not len(values):
        return np.zeros(len(values), dtype=bool)
    return np.isin(values.astype(str), of.astype(str))


def _upper(matrix: np.ndarray) -> np.ndarray:
    return matrix[np.triu_indices(len(matrix))]


def _full(upper: np.ndarray) -> np.ndarray:
    dim = int((np.sqrt(8 * len(upper) + 1) - 1) / 2)
    out = np.zeros((dim, dim))
    out[np.triu_indices(dim)] = upper
    return out + np.triu(out, 1).T
