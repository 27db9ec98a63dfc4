"""newsqa as llama-index components: our retrieval, cleaning and cited answers in any
llama-index pipeline.

    from bot.deps import build_deps
    from bot.llamaindex import NewsQueryEngine, NewsReader, NewsRetriever

    deps = build_deps()
    nodes = NewsRetriever(deps, top_k=5).retrieve("What did To Lam ask of Hai Phong?")
    response = NewsQueryEngine(deps).query("Wer leitet das Volkskomitee von Hai Phong?")
    print(response, response.metadata["citations"], response.source_nodes)
    documents = NewsReader().load_data("data/articles")   # cleaned, with our metadata

`NewsRetriever` takes llama-index `MetadataFilters` on `lang`, `doc_id` and `date`;
`NewsQueryEngine(streaming=True)` streams the answer as llama-index's own engines do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import RESPONSE_TYPE, Response, StreamingResponse
from llama_index.core.callbacks import CallbackManager
from llama_index.core.readers.base import BaseReader
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import Document, NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from bot.answering.pipeline import stream_answer
from bot.answering.question import Question
from bot.answering.records import Answer, Done, Sources, Token
from bot.deps import Deps
from bot.retrieval.records import Filters, Hit, PassageMeta
from bot.settings import Settings
from ingest.clean import clean_article
from ingest.metadata import describe
from ingest.readers import SkipFile, find_files, read_article

log = logging.getLogger(__name__)

# metadata kept out of what a llama-index LLM or embedder is given with a node's text
_HIDDEN = [
    "doc_id",
    "story_id",
    "file_name",
    "content_hash",
    "version",
    "chunk_index",
    "n_chunks",
    "start_char",
    "end_char",
    "n_tokens",
    "dense_rank",
    "lexical_rank",
    "alternatives",
    "publisher",
]


def hit_node(hit: Hit) -> NodeWithScore:
    """A retrieved passage as a llama-index node: our metadata, ranks, and its translations
    (`alternatives`, each as `Hit.to_dict`)."""
    meta: dict[str, Any] = dataclasses.asdict(hit.meta)
    meta.update(
        dense_rank=hit.dense_rank,
        lexical_rank=hit.lexical_rank,
        alternatives=[a.to_dict() for a in hit.alternatives],
    )
    node = TextNode(
        id_=hit.id,
        text=hit.text,
        metadata=meta,
        excluded_llm_metadata_keys=_HIDDEN,
        excluded_embed_metadata_keys=_HIDDEN,
    )
    return NodeWithScore(node=node, score=hit.score)


def node_dict(node: NodeWithScore) -> dict[str, Any]:
    """The one serialised form of a passage (`Hit.to_dict`) from any llama-index node, ours
    or another retriever's (its article is `doc_id`, else its file's name without suffix)."""
    meta = node.node.metadata
    doc = meta.get("doc_id") or Path(str(meta.get("file_name", ""))).stem
    return {
        "id": node.node.node_id,
        "doc_id": str(doc),
        "title": str(meta.get("title", "")),
        "lang": str(meta.get("lang", "")),
        "date": str(meta.get("date", "")),
        "source_url": str(meta.get("source_url", "")),
        "score": round(node.score or 0.0, 5),
        "text": node.node.get_content(),
        "alternatives": list(meta.get("alternatives", [])),
    }


def to_filters(filters: MetadataFilters | None) -> Filters:
    """Our filters from llama-index's: `lang` (== or in), `doc_id` (== or in), `date` (==, >,
    >=, <, <=; YYYY-MM-DD), joined by AND. Anything else is refused, not ignored."""
    out = Filters()
    if filters is None:
        return out
    if filters.condition not in (FilterCondition.AND, None) and len(filters.filters) > 1:
        raise ValueError("only filters joined by AND are supported")
    for item in filters.filters:
        if not isinstance(item, MetadataFilter):
            raise ValueError("nested MetadataFilters are not supported")
        _apply(out, item)
    return out


def _apply(out: Filters, item: MetadataFilter) -> None:
    op, key = item.operator, item.key
    values = [str(v) for v in item.value] if isinstance(item.value, list) else [str(item.value)]
    if key in ("lang", "doc_id") and op in (FilterOperator.EQ, FilterOperator.IN):
        field = "lang" if key == "lang" else "doc_ids"
        have = getattr(out, field)
        setattr(out, field, [v for v in values if v in have] if have else values)
        if not getattr(out, field):
            setattr(out, field, ["\0none"])  # two filters no passage passes
        return
    if key == "date" and op in _DATE_OPS and len(values) == 1:
        day = dt.date.fromisoformat(values[0])  # ValueError for anything but YYYY-MM-DD
        low, high = _DATE_OPS[op](day)
        if low is not None:
            out.date_from = max(out.date_from, low.isoformat())
        if high is not None:
            out.date_to = min(out.date_to or "9999-12-31", high.isoformat())
        return
    raise ValueError(
        f"unsupported filter {key} {op.value} {item.value!r}: use lang or doc_id "
        "(== or in) and date (==, >, >=, <, <=)"
    )


_DAY = dt.timedelta(days=1)
_DATE_OPS = {
    FilterOperator.EQ: lambda d: (d, d),
    FilterOperator.GTE: lambda d: (d, None),
    FilterOperator.GT: lambda d: (d + _DAY, None),
    FilterOperator.LTE: lambda d: (None, d),
    FilterOperator.LT: lambda d: (None, d - _DAY),
}


class NewsRetriever(BaseRetriever):
    """Our hybrid retrieval (dense per language, BM25, fused; translations folded) as a
    llama-index retriever."""

    def __init__(
        self,
        deps: Deps,
        top_k: int = 5,
        filters: MetadataFilters | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self.deps, self.top_k = deps, top_k
        self.filters = to_filters(filters)  # refused at once, not at the first question

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits, _ = self.deps.retriever.search(query_bundle.query_str, self.top_k, self.filters)
        return [hit_node(h) for h in hits]


class NewsReader(BaseReader):
    """Articles (txt, md, html, pdf; a file or a folder) as llama-index Documents, cleaned
    of site boilerplate as ingestion cleans them, with our metadata: title, lang, date,
    source_url, publisher, story_id (shared by translations), doc_id, file_name."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.max_bytes = (settings or Settings()).max_file_bytes

    def lazy_load_data(self, path: str | Path, *args: Any, **kwargs: Any) -> Iterator[Document]:
        for file in find_files([Path(path)]):
            try:
                raw, data = read_article(file, self.max_bytes)
                cleaned = clean_article(raw.text)
                if not cleaned.paragraphs:
                    raise SkipFile("nothing left after removing site boilerplate")
            except SkipFile as exc:
                log.warning("skipped %s: %s", file, exc)
                continue
            meta = describe(file, data, cleaned, raw.meta)
            yield Document(
                id_=meta.doc_id,
                text=cleaned.text,
                metadata=meta.as_chroma(),
                excluded_llm_metadata_keys=_HIDDEN,
                excluded_embed_metadata_keys=_HIDDEN,
            )


@dataclass
class AnswerStream(StreamingResponse):
    """A StreamingResponse whose text, once its stream has ended, is the checked answer
    (`metadata["answer"]`): the citation checks may move a citation to the passage that holds
    the sentence, or replace an unsupported reply with the refusal, after it was streamed."""

    def _drain(self) -> None:
        for _ in self.response_gen or ():  # what the caller has not read yet
            pass
        self.response_txt = str((self.metadata or {}).get("answer", self.response_txt or ""))

    def __str__(self) -> str:
        self._drain()
        return self.response_txt or ""

    def get_response(self) -> Response:
        self._drain()
        return Response(self.response_txt, self.source_nodes, self.metadata)


class NewsQueryEngine(BaseQueryEngine):
    """Our answering as a llama-index query engine: the cited answer in the question's
    language (or its refusal), `source_nodes` the passages numbered as it cites them ([n] is
    source_nodes[n - 1]), and in `metadata` the rest of our answer (`Answer.to_dict`:
    citations, refused, error, sentences and their support, timings). With `streaming`, a
    StreamingResponse whose metadata is filled when its `response_gen` ends."""

    def __init__(
        self,
        deps: Deps,
        streaming: bool = False,
        top_k: int | None = None,
        filters: MetadataFilters | None = None,
        history: list[dict[str, str]] | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager)
        self.deps, self.streaming, self.top_k = deps, streaming, top_k
        self.filters, self.history = to_filters(filters), list(history or [])

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}

    def _query(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        asked = Question(query_bundle.query_str, self.history, self.filters, self.top_k)
        events = stream_answer(self.deps, asked)
        nodes: list[NodeWithScore] = []
        metadata: dict[str, Any] = {}
        if self.streaming:
            return AnswerStream(_tokens(events, nodes, metadata), nodes, metadata)
        for _ in _tokens(events, nodes, metadata):
            pass
        return Response(metadata["answer"], nodes, metadata)

    async def _aquery(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        return self._query(query_bundle)


def _tokens(
    events: Iterator[Any], nodes: list[NodeWithScore], metadata: dict[str, Any]
) -> Generator[str, None, None]:
    """The answer's text as it streams; `nodes` follow the passages it cites from, and
    `metadata` is the finished answer's when the stream ends. What the final answer adds to
    the streamed text (a refusal when nothing was found, an error) ends the stream; when the
    checks replaced a streamed reply, `metadata["answer"]` is the text that stands."""
    streamed = ""
    for event in events:
        if isinstance(event, Sources):
            nodes[:] = [hit_node(h) for h in event.passages]
        elif isinstance(event, Token):
            streamed += event.text
            yield event.text
        elif isinstance(event, Done):
            answer: Answer = event.answer
            nodes[:] = [hit_node(h) for h in answer.passages]
            metadata.update(answer.to_dict())
            if answer.text.startswith(streamed) and answer.text != streamed:
                yield answer.text[len(streamed) :]


__all__ = [
    "NewsQueryEngine",
    "NewsReader",
    "NewsRetriever",
    "PassageMeta",
    "hit_node",
    "node_dict",
    "to_filters",
]
