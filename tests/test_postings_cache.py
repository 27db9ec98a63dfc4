"""Large parts of the search state keep their BM25 postings on this machine's disk, mapped by
every process, instead of in each process (bot.index.postings_cache)."""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest

from bot.index import search_state, state_store
from bot.index.postings_cache import STALE_S, PostingsCache
from bot.index.search_state import SearchState
from bot.index.store import Index, open_index
from bot.models.embeddings import FakeEmbedder
from bot.retrieval.retriever import Retriever
from ingest.pipeline import ingest_paths
from tests.conftest import make_settings
from tests.test_search_state import _assert_same, _rebuilt


def _mapped(state: SearchState) -> int:
    return sum(isinstance(p.rows, np.memmap) for p, _ in state.postings)


def _index(tmp: Path, corpus: Path) -> Index:
    settings = make_settings(tmp, data_dir=corpus, embedder="fake")
    ingest_paths([corpus], settings, progress=False)
    return open_index(settings, FakeEmbedder.name, FakeEmbedder.dim)


def _keys(cache: PostingsCache, index: Index) -> set[str]:
    base = cache.root / str(state_store.collection(index).id)
    return {p.name for p in base.iterdir()}


def test_mapped_postings_score_as_held_ones_through_changes(
    tmp_path: Path, corpus_copy: Path
) -> None:
    """A process following along and one starting late, both mapping every part's postings,
    hold what a rebuild holds after articles are added, changed and removed; the folder keeps
    only the parts still stored."""
    index = _index(tmp_path, corpus_copy)
    cache = PostingsCache(tmp_path / "postings", min_rows=1)
    follower = Retriever(index, FakeEmbedder(), postings=cache)
    assert _mapped(follower.state()) == 1
    rng = random.Random(5)
    originals = {p.name: p.read_text() for p in corpus_copy.glob("*.txt")}
    settings = make_settings(tmp_path, data_dir=corpus_copy, embedder="fake")
    for step in range(6):
        path = corpus_copy / rng.choice(sorted(originals))
        if path.exists() and rng.random() < 0.3:
            path.unlink()
        else:
            paragraphs = originals[path.name].split("\n\n")
            paragraphs.insert(2, f"Le zeppelin Xylophanes numéro {step} est arrivé au port.")
            path.write_text("\n\n".join(paragraphs))
        ingest_paths([corpus_copy], settings, prune=True, progress=False)
        held = follower.state()
        assert _mapped(held) == sum(len(p.rows) > 0 for p, _ in held.postings), step
    truth = _rebuilt(tmp_path / "fresh", corpus_copy)
    _assert_same(follower.state(), truth)
    late = Retriever(index, FakeEmbedder(), postings=cache).state()  # reads the state whole
    _assert_same(late, truth)
    manifest = state_store.read_manifest(index)
    assert manifest is not None
    stored = {p.key for p in manifest.parts} | {p.key for p, _ in manifest.retired}
    assert {p.key for p in manifest.parts if p.rows} <= _keys(cache, index) <= stored
    hits, _ = follower.search("Xylophanes zeppelin", 3)
    assert any("Xylophanes" in h.text for h in hits)


def test_small_parts_stay_in_memory(tmp_path: Path, corpus_copy: Path) -> None:
    index = _index(tmp_path, corpus_copy)
    cache = PostingsCache(tmp_path / "postings")  # 50,000 passages and more
    state = search_state.load(index, vectors=False, cache=cache)
    assert state is not None and _mapped(state) == 0
    assert not (tmp_path / "postings").exists()


def test_a_damaged_folder_is_written_again_and_what_is_no_longer_stored_goes(
    tmp_path: Path, corpus_copy: Path
) -> None:
    index = _index(tmp_path, corpus_copy)
    cache = PostingsCache(tmp_path / "postings", min_rows=1)
    truth = search_state.load(index, vectors=False)
    assert truth is not None
    first = search_state.load(index, vectors=False, cache=cache)
    assert first is not None and _mapped(first) == 1
    (key,) = _keys(cache, index)
    base = cache.root / str(state_store.collection(index).id)
    rows = base / key / "rows.npy"
    rows.write_bytes(rows.read_bytes()[: rows.stat().st_size // 2])  # a torn write
    half, old = base / f".{key}.0000aaaa", base / f".{key}.0000bbbb"  # killed while writing
    half.mkdir()
    old.mkdir()
    os.utime(old, (time.time() - STALE_S - 60,) * 2)
    gone = base / "0000000099-deadbeef"  # a part combined away and deleted from Chroma
    (base / key).rename(gone)
    (base / key).mkdir()
    rows.write_bytes((gone / "rows.npy").read_bytes()[:100])
    again = search_state.load(index, vectors=False, cache=cache)
    assert again is not None and _mapped(again) == 1
    _assert_same(again, truth)
    assert half.exists() and not old.exists() and not gone.exists()


def test_a_disk_that_refuses_the_postings_keeps_them_in_memory(
    tmp_path: Path, corpus_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = _index(tmp_path, corpus_copy)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    truth = search_state.load(index, vectors=False)
    with caplog.at_level(logging.WARNING):
        state = search_state.load(index, vectors=False, cache=PostingsCache(blocker, 1))
    assert state is not None and truth is not None and _mapped(state) == 0
    _assert_same(state, truth)
    assert "could not keep postings" in caplog.text
