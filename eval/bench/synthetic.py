"""Synthetic passages at scale: each joins 3-8 corpus sentences of one language; its vector is
the normalised sum of those sentences' real vectors plus noise (embedding 100k passages for real
would take hours here). They are written as news arrives: batch after batch through the index
and the search state's writer (bot.index.state_writer), each batch a segment."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def sentences(passages: list[tuple[str, str]]) -> dict[str, list[str]]:
    from bot.text.sentences import split_sentences

    by_lang: dict[str, list[str]] = {}
    for lang, text in passages:
        for paragraph in text.split("\n"):
            for a, b in split_sentences(paragraph, lang):
                sentence = paragraph[a:b].strip()
                if len(sentence) > 20:
                    by_lang.setdefault(lang, []).append(sentence)
    return {lang: sorted(set(s)) for lang, s in by_lang.items()}


class Synthetic:
    """Passages joined from corpus sentences, vectors from those sentences' real vectors."""

    def __init__(self, sentences: dict[str, list[str]], embedder: Any, seed: int = 7) -> None:
        self.langs = sorted(sentences)
        self.sentences = sentences
        self.vectors = {lang: embedder.embed_passages(s) for lang, s in sentences.items()}
        self.seed = seed

    def batch(self, start: int, n: int) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
        """Passages start..start+n. They depend on `start` alone, so a fill resumed after a
        stop writes new ones (a single random sequence, restarted, wrote the same vectors
        again under new ids: exact ties that read as missed recall)."""
        rng = np.random.default_rng([self.seed, start])
        texts, vectors, metas = [], [], []
        for i in range(start, start + n):
            lang = self.langs[int(rng.integers(len(self.langs)))]
            pick = rng.choice(len(self.sentences[lang]), int(rng.integers(3, 9)))
            texts.append(" ".join(self.sentences[lang][j] for j in pick))
            vec = self.vectors[lang][pick].sum(axis=0) + rng.normal(0, 0.02, 384)
            vectors.append(vec / np.linalg.norm(vec))
            doc = f"syn{i // 10:06d}"
            metas.append(
                {
                    "doc_id": doc,
                    "story_id": doc,
                    "lang": lang,
                    "version": "v1",
                    "title": f"Synthetic {doc}",
                    "chunk_index": i % 10,
                    "n_chunks": 10,
                    "date": f"20{20 + i % 6}-0{1 + i % 9}-1{i % 10}",
                }
            )
        return texts, np.asarray(vectors, dtype=np.float32), metas


def fill(index: Any, synthetic: Synthetic, size: int, batch: int = 2000) -> float:
    """Write `size` synthetic passages, a batch of articles at a time, as ingestion does: the
    catalog, the passages, and a search-state segment with Chroma's per-language vectors.
    Seconds taken."""
    from bot.index.state_writer import StateWriter
    from bot.index.store import _UNIT

    started = time.perf_counter()
    for start in range(0, size, batch):
        texts, vectors, metas = synthetic.batch(start, min(batch, size - start))
        ids = [f"{m['doc_id']}:v1:{m['chunk_index']:04d}" for m in metas]
        docs = sorted({m["doc_id"] for m in metas})
        with StateWriter(index) as writer:
            nonces = writer.begin(docs, indexed=[])
            index.upsert_passages(ids, vectors, texts, metas)
            index.catalog.upsert(
                ids=docs,
                embeddings=np.repeat(_UNIT, len(docs), axis=0),
                metadatas=[
                    {"doc_id": d, "version": "v1", "pending": "", "n_passages": 10} for d in docs
                ],
            )
            writer.publish(nonces, ids, texts, metas, vectors)
    return time.perf_counter() - started
