"""Every citation checked: each answer sentence is matched to the sentences of the passages the
model read that it could rest on.

A sentence's support by a passage sentence is the embedder's similarity (question side for the
answer sentence, passage side for the evidence), standardised over every sentence the model read
(multilingual-e5-small separates a translation from an unrelated sentence by little in absolute
terms: median best cosine 0.847 against 0.851 from German to Thai, measured on the corpus), plus
the share of the answer sentence's names and numbers that the evidence sentence holds too.
A marker pointing at a passage that does not support its sentence moves to the passage that
clearly does; a sentence nothing supports is recorded as unsupported.

An answer in PIVOT_LANGUAGE is also matched to the stored translations of the sentences it
could rest on (bot.answering.pivot): an English answer meets a French sentence's English
version closer than the sentence itself, and its names as the answer spells them. A sentence's
score is the better of the two, each standardised over its own kind; the evidence shown is
always the original sentence.

A question asking for a kind of quantity (bot.answering.quantity: an amount of money, a length,
…) is answered only by a sentence whose evidence states a figure of that kind: "1,000 MW" is
in the evidence, and it is no budget.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from bot.answering.citations import MARKER, MARKERS
from bot.answering.quantity import states_kind
from bot.answering.records import Checked, Citation, Claim, Evidence, SentenceId
from bot.models.embeddings import Embedder, cosines
from bot.models.vector_cache import VectorCache
from bot.retrieval.records import Hit
from bot.text.sentences import answer_sentences

SUPPORTED = 3.0  # standardised similarity plus twice the anchor share, for "supported"
CLEAR = 1.0  # how much better another passage must be for a marker to move to it
_GROUPED = r"(?<!\d)\d{1,3}(?:[.,\u00a0\u202f ]\d{3})+(?!\d)"  # "1,000", "1 000", "15.000"
_ANCHOR = re.compile(rf"{_GROUPED}|\d+(?:[.,/]\d+)*|\b[A-ZÀ-Ý][\w'’-]+")


def _anchor(found: str) -> str:
    """A name lower-cased; a figure written one way whatever the language wrote it ("1,000",
    "1 000" and "1.000" are 1000; "2,5" is 2.5)."""
    if re.fullmatch(_GROUPED, found):
        return re.sub(r"\D", "", found)
    return found.lower().replace(",", ".") if found[0].isdigit() else found.lower()


def _anchors(text: str) -> set[str]:
    found = {_anchor(m) for m in _ANCHOR.findall(text)}
    found |= {part for m in found if "/" in m for part in m.split("/")}  # "14/20": 14 and 20
    first = re.match(r"\W*([\w'’-]+)", text)  # a sentence's first word is capitalised anyway
    if first and not first.group(1)[0].isdigit():
        found.discard(first.group(1).lower())
    return found


def _scores(
    embedder: Embedder,
    cache: VectorCache,
    claims: list[str],
    sentences: list[str],
    translated: list[str | None] | None = None,
) -> np.ndarray:
    """Each claim's score against each sentence; with `translated` (a sentence's stored
    translation, or None), the better of its score and its translation's, each standardised
    over its own kind (a claim in English meets an English translation closer than its French
    original, on the same scale as other translations)."""
    vectors = np.stack([embedder.embed_query(c) for c in claims])
    z = _standardised(embedder, cache, claims, vectors, sentences)
    where = [i for i, t in enumerate(translated or []) if t]
    if where:
        texts = [(translated or [])[i] or "" for i in where]
        z[:, where] = np.maximum(
            z[:, where], _standardised(embedder, cache, claims, vectors, texts)
        )
    return z


def _standardised(
    embedder: Embedder,
    cache: VectorCache,
    claims: list[str],
    vectors: np.ndarray,
    sentences: list[str],
) -> np.ndarray:
    sims = cosines(vectors, cache(sentences))
    spread = sims.std(axis=1, keepdims=True) if sims.shape[1] > 1 else np.ones((len(claims), 1))
    z = (sims - sims.mean(axis=1, keepdims=True)) / np.maximum(spread, 1e-6)
    anchors = [_anchors(s) for s in sentences]
    for i, claim in enumerate(claims):
        wanted = _anchors(claim)
        if wanted:
            z[i] += 2.0 * np.array([len(wanted & a) / len(wanted) for a in anchors])
    return z


def _translated(
    read: list[Hit],
    spans: list[tuple[int, int, int]],
    translations: Mapping[SentenceId, str] | None,
) -> list[str | None] | None:
    """Each sentence's translation in `translations`, None where it has none."""
    if not translations:
        return None
    return [translations.get((read[n - 1].id, s, e)) for n, s, e in spans]


def _spans(passages: list[Hit], context_n: int) -> list[tuple[int, int, int]]:
    """(n, start, end) of every sentence of the passages the model read."""
    return [(n, s, e) for n, hit in enumerate(passages[:context_n], 1) for s, e in hit.sentences()]


def _claims(text: str) -> list[Claim]:
    return [
        Claim(a, b, MARKERS.sub("", piece).strip(), [int(n) for n in MARKER.findall(piece)])
        for a, b in answer_sentences(text)
        for piece in [text[a:b]]
    ]


def _worth(claim: Claim) -> bool:
    """Whether a sentence says something to check: not a list's heading, not a word of three
    letters or fewer ("Yes."), but any figure ("14")."""
    text = claim.text
    return (len(text) > 3 or any(ch.isdigit() for ch in text)) and not text.endswith(":")


def check_support(
    embedder: Embedder,
    text: str,
    passages: list[Hit],
    context_n: int,
    citations: list[Citation],
    cache: VectorCache | None = None,
    translations: Mapping[SentenceId, str] | None = None,
) -> Checked:
    """The reply `text` checked against the sentences of the first `context_n` of `passages`
    (what the model read; [n] is passages[n - 1]) and, where `translations` holds them, their
    translations (bot.answering.pivot.sentence_translations; the evidence is the original
    sentence): its claims, each marker moved to the passage that clearly supports its
    sentence, and the text and citations that follow (`citations`, the reply's own, when no
    marker moved)."""
    read = passages[:context_n]
    spans = _spans(passages, context_n)
    claims = _claims(text)
    worth = [c for c in claims if _worth(c)]
    if not spans or not worth:
        return Checked(text, citations, claims)
    sentences = [read[n - 1].text[s:e] for n, s, e in spans]
    scores = _scores(
        embedder,
        cache or VectorCache(embedder.embed_passages),
        [c.text for c in worth],
        sentences,
        _translated(read, spans, translations),
    )
    for claim, row in zip(worth, scores, strict=True):
        _judge(claim, row, spans)
    return _rewrite(text, passages, citations, claims)


def _judge(claim: Claim, row: np.ndarray, spans: list[tuple[int, int, int]]) -> None:
    """Set the claim's support, evidence and markers from its scores against every sentence."""
    where = np.array([n for n, _, _ in spans])
    best = int(np.argmax(row))
    own = [i for i in range(len(spans)) if where[i] in claim.cited]
    mine = max(own, key=lambda i: row[i]) if own else None
    if mine is not None and row[mine] >= SUPPORTED:
        pick = mine
        keep = [n for n in claim.cited if _holds(row, where, n, row[mine])]
        if keep != claim.cited:  # another marker of it points at a passage that does not
            claim.moved_from, claim.cited = claim.cited, keep
    elif row[best] >= SUPPORTED and (mine is None or row[best] - row[mine] >= CLEAR):
        claim.moved_from, claim.cited, pick = claim.cited, [int(where[best])], best
        claim.added = not claim.moved_from
    else:
        claim.evidence = [Evidence(int(where[best]), *spans[best][1:], float(row[best]))]
        return
    claim.supported = True
    claim.evidence = [Evidence(int(where[pick]), *spans[pick][1:], float(row[pick]))]


class SentenceCheck:
    """Whether one sentence of a reply is supported, by the same judgement as check_support,
    for a reply still streaming (bot.answering.gate); with `asks`, the kinds of quantity the
    question asks for, only by evidence stating one (SentenceCheck.states_asked)."""

    def __init__(
        self,
        embedder: Embedder,
        passages: list[Hit],
        context_n: int,
        cache: VectorCache | None = None,
        translations: Mapping[SentenceId, str] | None = None,
        asks: frozenset[str] = frozenset(),
    ) -> None:
        self.embedder = embedder
        self.cache = cache or VectorCache(embedder.embed_passages)
        self.passages = passages
        read = passages[:context_n]
        self.spans = _spans(passages, context_n)
        self.sentences = [read[n - 1].text[s:e] for n, s, e in self.spans]
        self.translations = translations or {}
        self.translated = _translated(read, self.spans, translations)
        self.asks = asks

    def __call__(self, sentence: str) -> bool:
        """Whether `sentence` is supported, by evidence stating what the question asks for."""
        claims = self._judged(sentence)
        return any(c.supported for c in claims) and self.states_asked(claims)

    def states_asked(self, claims: list[Claim]) -> bool:
        """Whether a supported claim's evidence (the sentence, or its stored translation) states
        a figure of one of the kinds of quantity the question asks for (none asked: True)."""
        if not self.asks:
            return True
        return any(
            states_kind(text, self.asks)
            for claim in claims
            if claim.supported
            for e in claim.evidence
            for text in (self._sentence(e), self._translation(e))
        )

    def supports(self, sentence: str) -> bool:
        """Whether `sentence` is supported, whatever the question asks for (a sentence of an
        answer rewritten, which another sentence's figure answers)."""
        return any(c.supported for c in self._judged(sentence))

    def _judged(self, sentence: str) -> list[Claim]:
        claims = [c for c in _claims(sentence) if _worth(c)]
        if not self.spans or not claims:
            return []
        scores = _scores(
            self.embedder, self.cache, [c.text for c in claims], self.sentences, self.translated
        )
        for claim, row in zip(claims, scores, strict=True):
            _judge(claim, row, self.spans)
        return claims

    def translation_of(self, claim: Claim) -> str:
        """The stored translation of the sentence a supported claim rests on ("" if none)."""
        if not claim.supported or not claim.evidence:
            return ""
        return self._translation(claim.evidence[0])

    def _sentence(self, e: Evidence) -> str:
        return self.passages[e.n - 1].text[e.start : e.end]

    def _translation(self, e: Evidence) -> str:
        return self.translations.get((self.passages[e.n - 1].id, e.start, e.end), "")


def _holds(row: np.ndarray, where: np.ndarray, n: int, best: float) -> bool:
    """Whether passage `n` supports the sentence scored by `row`, or falls short of its best
    supporting passage (`best`) by too little to tell (a passage with no sentence: kept)."""
    mine = row[where == n]
    return not len(mine) or mine.max() >= SUPPORTED or best - mine.max() < CLEAR


def _rewrite(
    original: str, passages: list[Hit], citations: list[Citation], claims: list[Claim]
) -> Checked:
    """The answer text with each moved claim's markers replaced, offsets updated."""
    text, last = [], 0
    for claim in claims:  # their offsets are still those in `original`
        a, b = claim.start, claim.end
        text.append(original[last:a])
        body = original[a:b]
        if claim.moved_from or claim.added:
            core = MARKERS.sub("", body)
            stripped = core.rstrip()
            words = stripped.rstrip(".!?。")
            marks = "".join(f"[{n}]" for n in claim.cited)
            body = f"{words} {marks}{stripped[len(words) :]}{core[len(stripped) :]}"
        claim.start = sum(len(t) for t in text)
        text.append(body)
        claim.end = claim.start + len(body)
        last = b
    text.append(original[last:])
    numbers: list[int] = []
    for claim in claims:
        numbers += [n for n in claim.cited if n not in numbers and 1 <= n <= len(passages)]
    if any(c.moved_from or c.added for c in claims) or not citations:
        citations = [Citation(n, passages[n - 1]) for n in numbers]
    return Checked("".join(text), citations, claims)
