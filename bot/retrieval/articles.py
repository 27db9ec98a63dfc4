"""Articles as the unit the model reads: which article answers best, its passages in reading
order, and its sections when it is longer than the model may read at once.

Measured on the dev questions (eval/questions/dev.jsonl, 29 answerable; article hit@1 of the
ranking from 30 fused passages): an article scored by its best passage 0.655, by the sum of its
passages' scores 0.448, by a sum discounted 1, 1/2, 1/4 ... 0.552, by its best two 0.621. Long
articles collect many weak passages, so the best passage decides; the right article is among
the best three for every one of those questions, which is why answering tries the next article
when the model finds no answer in the first (bot.answering.pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.index.store import Index
from bot.retrieval.records import Hit, PassageMeta
from bot.text.thai import THAI_RUN


@dataclass
class Section:
    """Consecutive passages of one article that the model reads as one prompt prefix."""

    doc_id: str
    version: str
    number: int  # 0 for the first section (the whole article when it fits)
    count: int
    passages: list[Hit]
    translated: str = ""  # the language its passages are translated into (bot.answering.pivot)

    @property
    def label(self) -> str:
        """Names the section's stored prefix; changes with the article's content and with how
        it is cut (ARTICLE_TOKENS), so one cut's prefixes never replace another's; a
        translation's ends in ">" and its language."""
        label = f"{self.doc_id}@{self.version}#{self.number}/{self.count}"
        return f"{label}>{self.translated}" if self.translated else label


def rank_articles(hits: list[Hit]) -> list[str]:
    """Article ids, best first, each scored by its best passage among `hits` (a translation
    folded into a hit as one of its alternatives counts as evidence for its own article)."""
    best: dict[str, float] = {}
    for hit in hits:
        for doc_id in [hit.doc_id, *(a.doc_id for a in hit.alternatives)]:
            best[doc_id] = max(best.get(doc_id, 0.0), hit.score)
    return sorted(best, key=lambda d: -best[d])


def llm_tokens(text: str) -> int:
    """A cautious estimate of the LLM tokens of `text` (Qwen2.5: ~4-5.5 characters a token in
    English, French and German, ~1.9 in Thai), so that sections fit whatever the language."""
    thai = sum(len(m) for m in THAI_RUN.findall(text))
    return int((len(text) - thai) / 3.5 + thai / 1.8) + 1


def article_passages(index: Index, doc_id: str) -> list[Hit]:
    """The committed passages of one article in reading order (empty when it is not indexed)."""
    record = index.record(doc_id) or {}
    version = str(record.get("version") or "")
    got = index.passages.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
    hits = [
        Hit(pid, str(text), PassageMeta.from_chroma(meta), 0.0)
        for pid, text, meta in zip(
            got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
        )
    ]
    hits = [h for h in hits if not version or h.meta.version == version]
    return sorted(hits, key=lambda h: h.meta.chunk_index)


def sections(passages: list[Hit], max_tokens: int) -> list[Section]:
    """The article cut, between passages, into as few sections of at most `max_tokens` LLM
    tokens as it takes (a passage longer than that alone is a section of its own), as even as
    they can be: no section is a short tail holding too little to answer from."""
    if not passages:
        return []
    sizes = [llm_tokens(hit.text) + 12 for hit in passages]  # its number, title line, blank line
    fewest = len(_pack(sizes, max_tokens))
    even = -(-sum(sizes) // fewest)  # the size of each if passages could be cut anywhere
    low, high = even, max(max_tokens, even)
    while low < high:  # the smallest section size that still needs no more sections
        middle = (low + high) // 2
        low, high = (low, middle) if len(_pack(sizes, middle)) <= fewest else (middle + 1, high)
    groups = [passages[start:end] for start, end in _pack(sizes, low)]
    meta = passages[0].meta
    return [
        Section(meta.doc_id, meta.version or meta.content_hash, i, len(groups), group)
        for i, group in enumerate(groups)
    ]


def _pack(sizes: list[int], cap: int) -> list[tuple[int, int]]:
    """Consecutive groups (start, end) of `sizes`, each filled up to `cap` before the next."""
    groups: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, size in enumerate(sizes):
        if i > start and used + size > cap:
            groups.append((start, i))
            start, used = i, 0
        used += size
    return [*groups, (start, len(sizes))]


def best_section(all_sections: list[Section], hits: list[Hit]) -> Section:
    """The section holding the best-ranked of `hits` (the first section when none is there)."""
    ids = {h.id: rank for rank, h in enumerate(hits)}
    ids.update({a.id: ids[h.id] for h in hits for a in h.alternatives if a.id not in ids})

    def rank(section: Section) -> int:
        return min((ids[p.id] for p in section.passages if p.id in ids), default=len(hits))

    return min(all_sections, key=rank)
