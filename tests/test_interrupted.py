"""A run killed mid-write loses nothing already indexed, and the next run repairs the index.

The ingestion runs in a child process that dies with os._exit (no cleanup, no finally blocks,
like SIGKILL) at a chosen step of writing one article.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from chromadb.api.shared_system_client import SharedSystemClient

from bot.index import search_state
from bot.index.store import open_index
from bot.models.embeddings import FakeEmbedder
from ingest.pipeline import ingest_paths
from tests.conftest import ROOT, make_settings
from tests.test_search_state import _assert_same, _rebuilt

VICTIM = "003_b526725865409856"

pytestmark = [pytest.mark.slow, pytest.mark.reliability]  # processes killed mid-write

_CHILD = """
import os, sys
from pathlib import Path
from bot.index.store import Index
import ingest.batch
from ingest.pipeline import ingest_paths
from tests.conftest import make_settings

from bot.index import state_store
from bot.index.dense import DenseIndex
from bot.index.state_writer import StateWriter

step, victim, tmp, corpus, prune = sys.argv[1:6]
ingest.batch.BATCH_ARTICLES = 2  # batches of two articles: 000+001, 002+003, 004

if step.startswith(("state:", "dense:")):  # a step of the search state's write for the victim
    name = step.split(":")[1]
    owner = state_store if step.startswith("state:") else DenseIndex
    original = getattr(owner, name)
    begin, active = StateWriter.begin, []

    def marking(self, doc_ids, *args):
        active.append(victim in doc_ids)
        return begin(self, doc_ids, *args)

    def dying(*args, **kwargs):
        if active and active[-1]:
            if name == "put_intents":  # die just after the intents are stored
                original(*args, **kwargs)
            os._exit(137)
        return original(*args, **kwargs)

    StateWriter.begin = marking
    setattr(owner, name, dying)
else:  # a step of the index's write; "commit" and "cleanup" are the catalog writes that commit
    # the victim and then clear its pending mark
    marks = {"commit": "cleanup", "cleanup": ""}
    method = "_mark" if step in marks else step
    original = getattr(Index, method)

    def hits(arg):
        if step in marks:
            return arg.get(victim, {}).get("pending") == marks[step]
        return victim == arg if isinstance(arg, str) else victim in arg

    def die_on_victim(self, arg, *args, **kwargs):
        if hits(arg):
            if step == "remove":  # die half-way through the delete
                self.catalog.upsert(ids=[victim], embeddings=[[1.0]],
                                    metadatas=[{**self.articles()[victim], "pending": "delete"}])
            os._exit(137)
        return original(self, arg, *args, **kwargs)

    setattr(Index, method, die_on_victim)
settings = make_settings(Path(tmp), embedder="fake")
ingest_paths([Path(corpus)], settings, prune=prune == "1", progress=False)
"""


def _run_child(step: str, tmp: Path, corpus: Path, prune: bool = False) -> None:
    code = textwrap.dedent(_CHILD)
    args = [sys.executable, "-c", code, step, VICTIM, str(tmp), str(corpus), "1" if prune else "0"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 137, done.stderr
    # this process's embedded Chroma still holds the vector index as it was before the child
    # wrote: open the index afresh, as the next run (a new process) would
    SharedSystemClient.clear_system_cache()


def _snapshot(tmp: Path) -> tuple[dict[str, str], int, list[str]]:
    """Article versions, passage count, and what is inconsistent (search state included)."""
    index = open_index(make_settings(tmp, embedder="fake"), FakeEmbedder.name, FakeEmbedder.dim)
    versions = {doc_id: str(rec["version"]) for doc_id, rec in index.articles().items()}
    return versions, index.count(), index.problems() + search_state.problems(index)


@pytest.mark.parametrize("step", ["commit", "cleanup"])
def test_killed_while_adding_a_new_article(tmp_path: Path, corpus_copy: Path, step: str) -> None:
    """Articles are written two at a time here: the batch written before the victim's is kept,
    the victim's batch (002 and 003) is rolled back by the next run, which then adds it."""
    _run_child(step, tmp_path, corpus_copy)
    versions, _, problems = _snapshot(tmp_path)
    assert problems, "the kill left a half-written article behind"
    assert {"000_dc2988f8c62b768a", "001_5e3177cbc2a4a8ec"} <= set(versions)

    settings = make_settings(tmp_path, embedder="fake")
    summary = ingest_paths([corpus_copy], settings, progress=False)
    assert summary.repaired == ["002_1ca994a0bc34cf02", VICTIM]
    versions, count, problems = _snapshot(tmp_path)
    assert problems == []
    assert len(versions) == 5
    fresh = make_settings(tmp_path / "fresh", embedder="fake")
    assert count == ingest_paths([corpus_copy], fresh, progress=False).total_passages


@pytest.mark.parametrize("step", ["commit", "_drop_other_versions"])
def test_killed_while_replacing_a_changed_article(
    tmp_path: Path, corpus_copy: Path, step: str
) -> None:
    settings = make_settings(tmp_path, embedder="fake")
    ingest_paths([corpus_copy], settings, progress=False)
    before, count_before, _ = _snapshot(tmp_path)
    victim = corpus_copy / f"{VICTIM}.txt"
    victim.write_text(victim.read_text(encoding="utf-8") + "\nUne phrase ajoutée.", "utf-8")

    _run_child(step, tmp_path, corpus_copy)
    after_kill, _, problems = _snapshot(tmp_path)
    assert problems
    if step == "commit":  # killed before the commit: the old version is still the indexed one
        assert after_kill == before

    summary = ingest_paths([corpus_copy], settings, progress=False)
    assert summary.repaired == [VICTIM]
    versions, count, problems = _snapshot(tmp_path)
    assert problems == []
    assert versions[VICTIM] != before[VICTIM]
    assert {k: v for k, v in versions.items() if k != VICTIM} == {
        k: v for k, v in before.items() if k != VICTIM
    }
    assert count >= count_before


def test_killed_while_pruning(tmp_path: Path, corpus_copy: Path) -> None:
    settings = make_settings(tmp_path, embedder="fake")
    ingest_paths([corpus_copy], settings, progress=False)
    (corpus_copy / f"{VICTIM}.txt").unlink()
    _run_child("remove", tmp_path, corpus_copy, prune=True)
    summary = ingest_paths([corpus_copy], settings, progress=False)
    assert summary.repaired == [VICTIM]
    versions, _, problems = _snapshot(tmp_path)
    assert problems == [] and VICTIM not in versions and len(versions) == 4


@pytest.mark.parametrize(
    "step",
    [
        "state:put_intents",
        "dense:write",
        "dense:drop",
        "state:save_segment",
        "state:write_manifest",
        "state:drop_intents",
    ],
)
def test_killed_while_updating_the_search_state(
    tmp_path: Path, corpus_copy: Path, step: str
) -> None:
    """Killed at each step of the search state's update for a changed article (intent stored,
    Chroma's per-language vectors not written, or written with the old version's still there,
    segment not stored, manifest not moved, intent not dropped): the next run finishes it,
    and the state equals one built from scratch."""
    settings = make_settings(tmp_path, embedder="fake")
    ingest_paths([corpus_copy], settings, progress=False)
    victim = corpus_copy / f"{VICTIM}.txt"
    paragraphs = victim.read_text(encoding="utf-8").split("\n\n")
    paragraphs.insert(3, "Le port de Lach Huyen accueille le zeppelin Xylophanes.")
    victim.write_text("\n\n".join(paragraphs), "utf-8")

    _run_child(step, tmp_path, corpus_copy)
    _, _, problems = _snapshot(tmp_path)
    if step != "state:drop_intents":  # the manifest already names the new segment there
        assert any("search state" in p for p in problems), problems

    ingest_paths([corpus_copy], settings, progress=False)
    _, _, problems = _snapshot(tmp_path)
    assert problems == []
    index = open_index(settings, FakeEmbedder.name, FakeEmbedder.dim)
    state = search_state.load(index)
    assert state is not None
    _assert_same(state, _rebuilt(tmp_path / "fresh", corpus_copy))
