"""The records retrieval hands on: a passage's metadata, a hit, and the caller's filters."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.text.sentences import sentence_spans


@dataclass(frozen=True)
class PassageMeta:
    """What the index stores beside a passage's text (ingest.pipeline writes it)."""

    doc_id: str = ""
    title: str = ""
    lang: str = ""
    date: str = ""  # YYYY-MM-DD, "" when the article has none
    source_url: str = ""
    publisher: str = ""
    story_id: str = ""  # shared by translations of one story
    file_name: str = ""
    content_hash: str = ""
    version: str = ""
    chunk_index: int = 0  # the passage's place in its article, from 0
    n_chunks: int = 1
    start_char: int = 0  # offsets in the cleaned article text
    end_char: int = 0
    n_tokens: int = 0  # embedder tokens

    @classmethod
    def from_chroma(cls, meta: Mapping[str, Any] | None) -> PassageMeta:
        """From a Chroma metadata record; unknown keys are ignored, missing ones default."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = (meta or {}).get(f.name)
            if raw is not None:
                values[f.name] = int(raw) if f.type == "int" else str(raw)
        return cls(**values)


@dataclass
class Filters:
    """Restrict retrieval; every field is optional. Dates are ISO strings (YYYY-MM-DD)."""

    lang: list[str] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    date_from: str = ""
    date_to: str = ""


@dataclass
class Hit:
    id: str
    text: str
    meta: PassageMeta
    score: float  # fused RRF score
    dense_rank: int | None = None
    lexical_rank: int | None = None
    alternatives: list[Hit] = field(default_factory=list)  # the same passage in translation

    @property
    def doc_id(self) -> str:
        return self.meta.doc_id

    def sentences(self) -> list[tuple[int, int]]:
        """The passage's sentences an answer sentence may rest on (offsets in `text`)."""
        return [(s, e) for s, e in sentence_spans(self.text, self.meta.lang) if e - s > 3]

    def to_dict(self) -> dict[str, Any]:
        """The one serialised form of a passage (the API, the CLI's JSON and eval results)."""
        meta = self.meta
        return {
            "id": self.id,
            "doc_id": meta.doc_id,
            "title": meta.title,
            "lang": meta.lang,
            "date": meta.date,
            "source_url": meta.source_url,
            "score": round(self.score, 5),
            "text": self.text,
            "alternatives": [a.to_dict() for a in self.alternatives],
        }
