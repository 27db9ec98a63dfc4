"""The pipelines an evaluation runs: ours (bot.answering) and the llama-index quickstart baseline.

Both take a Question and return one result dict (a line of results.jsonl, before scoring).
Both rank llama-index nodes (ours through bot.llamaindex), serialised by one function.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.schema import NodeWithScore

from bot.answering.pipeline import answer, retrieve
from bot.answering.question import Question as Asked
from bot.deps import Deps, build_deps
from bot.llamaindex import hit_node, node_dict
from bot.models.embeddings import Embedder, make_embedder
from bot.models.llm import ChatModel, make_llm
from bot.retrieval.articles import rank_articles
from bot.retrieval.records import Hit
from bot.settings import Settings
from eval.metrics import looks_like_refusal
from eval.questions import Question
from ingest.pipeline import ingest_paths


def _ranking(passages: Sequence[Hit | NodeWithScore]) -> list[dict[str, Any]]:
    """Ranked passages (our hits, or any llama-index retriever's nodes) as result dicts."""
    nodes = [hit_node(p) if isinstance(p, Hit) else p for p in passages]
    return [{"rank": rank, **node_dict(node)} for rank, node in enumerate(nodes, 1)]


class Ours:
    name = "ours"

    def __init__(self, settings: Settings, retrieval_only: bool, llm: ChatModel | None = None):
        self.settings, self.retrieval_only = settings, retrieval_only
        embedder = make_embedder(settings)
        summary = ingest_paths([settings.data_dir], settings, embedder, progress=False)
        if not summary.total_articles:
            raise RuntimeError(f"no article could be indexed from {settings.data_dir}")
        self.deps: Deps = build_deps(settings, llm, embedder)
        self.k = settings.top_k

    def run(self, q: Question) -> dict[str, Any]:
        if self.retrieval_only:
            # no LLM to rewrite a follow-up: earlier user turns are added to the query instead
            asked = [t["content"] for t in q.history if t.get("role") == "user"]
            query = " ".join([*asked, q.question])
            found = retrieve(self.deps, query, q.lang, self.k, read_only=False)
            ranking = _ranking(found.passages)
            read = found.plans[0].passages if found.plans else []
            return {
                "retrieval_only": True,
                "ranking": ranking,
                "retrieved": _ranking(read) if read else ranking[: found.context_n],
                "articles": rank_articles(found.candidates),
                "timings": {"retrieve_s": found.seconds},
            }
        result = answer(self.deps, Asked(q.question, q.history, top_k=self.k))
        ranking = _ranking(result.retrieved or result.passages)
        return {
            "mode": result.mode,
            "articles": result.article_ranking,
            "articles_tried": result.articles_tried,
            "sentences": [
                {"supported": c.supported, "moved": bool(c.moved_from)} for c in result.claims
            ],
            "answer": result.text,
            "raw_answer": result.raw_text,
            "refused": result.refused,
            "verdict": result.verdict,
            "draft": result.draft,
            "tries": result.tries,
            "foreign": result.foreign,
            "foreign_left": result.foreign_left,
            "guard": result.guard,
            "error": result.error,
            "standalone_question": result.standalone_question,
            "ranking": ranking,
            "retrieved": _ranking(result.passages[: result.context_n]),
            "read": _ranking(result.read),
            "citations": [{"n": c.n, **c.passage.to_dict()} for c in result.citations],
            "timings": {
                k: result.timings[k]
                for k in (
                    "retrieve_s",
                    "model_first_token_s",
                    "first_token_s",
                    "total_s",
                    "tries",
                    "one_language_s",
                    "one_language_stored",
                )
                if k in result.timings
            },
        }

    def close(self) -> None:
        self.deps.close()


class Baseline:
    """What a user builds from llama-index's starter tutorial: SimpleDirectoryReader over the
    article files, VectorStoreIndex with its default splitter and top-k, `as_query_engine()`
    with its default QA prompt; the same embedder and the same LLM as ours."""

    name = "baseline"

    def __init__(self, settings: Settings, retrieval_only: bool, llm: ChatModel | None = None):
        from llama_index.core import Settings as LlamaSettings
        from llama_index.core import SimpleDirectoryReader, VectorStoreIndex

        self.retrieval_only = retrieval_only
        self.llm = llm or make_llm(settings)
        LlamaSettings.embed_model = _embedding(make_embedder(settings))
        LlamaSettings.llm = _llm(self.llm, settings.llm_max_tokens)
        documents = SimpleDirectoryReader(str(settings.data_dir), recursive=True).load_data()
        for doc in documents:
            doc.metadata["doc_id"] = Path(doc.metadata.get("file_name", "")).stem
        self.index = VectorStoreIndex.from_documents(documents)
        self.engine = self.index.as_query_engine(streaming=True)
        self.k = self.engine.retriever.similarity_top_k  # type: ignore[attr-defined]

    def run(self, q: Question) -> dict[str, Any]:
        from llama_index.core import QueryBundle

        started = time.perf_counter()
        bundle = QueryBundle(q.question)  # the starter tutorial keeps no conversation
        nodes = self.engine.retrieve(bundle)
        timings = {"retrieve_s": time.perf_counter() - started}
        ranking = _ranking(nodes)
        if self.retrieval_only:
            return {
                "retrieval_only": True,
                "ranking": ranking,
                "retrieved": ranking,
                "timings": timings,
            }
        response = self.engine.synthesize(bundle, nodes)
        text = ""
        for token in response.response_gen:  # type: ignore[union-attr]
            if not text:
                timings["first_token_s"] = time.perf_counter() - started
            text += token
        timings["total_s"] = time.perf_counter() - started
        return {
            "answer": text.strip(),
            "raw_answer": text,
            "refused": looks_like_refusal(text),
            "error": "",
            "ranking": ranking,
            "retrieved": ranking,
            "citations": [],
            "timings": timings,
        }

    def close(self) -> None:
        self.llm.close()


def _embedding(embedder: Embedder) -> Any:
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class NanoEmbedding(BaseEmbedding):
        _embedder: Any = PrivateAttr()

        def __init__(self, inner: Embedder) -> None:
            super().__init__(model_name=inner.name, embed_batch_size=16)
            self._embedder = inner

        def _get_query_embedding(self, query: str) -> list[float]:
            return [float(x) for x in self._embedder.embed_query(query)]

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embeddings([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return [[float(x) for x in v] for v in self._embedder.embed_passages(texts)]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return NanoEmbedding(embedder)


def _as_dicts(messages: Sequence[Any]) -> list[dict[str, str]]:
    """llama-index ChatMessages as OpenAI-style messages."""
    return [{"role": str(m.role.value), "content": m.content or ""} for m in messages]


def _llm(model: ChatModel, max_tokens: int) -> Any:
    """Our ChatModel as a llama-index chat LLM, so llama-index picks its chat QA prompt."""
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ChatResponse,
        CompletionResponse,
        LLMMetadata,
    )
    from llama_index.core.llms import CustomLLM
    from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
    from pydantic import PrivateAttr

    class Wrapped(CustomLLM):
        _model: Any = PrivateAttr()

        def __init__(self, inner: ChatModel) -> None:
            super().__init__()
            self._model = inner

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(context_window=4096, num_output=max_tokens, is_chat_model=True)

        @llm_chat_callback()
        def chat(self, messages: Sequence[ChatMessage], **kw: Any) -> ChatResponse:
            text = self._model.complete(_as_dicts(messages), max_tokens)
            return ChatResponse(message=ChatMessage(role="assistant", content=text))

        @llm_chat_callback()
        def stream_chat(self, messages: Sequence[ChatMessage], **kw: Any) -> Iterator[ChatResponse]:
            def gen() -> Iterator[ChatResponse]:
                text = ""
                for piece in self._model.stream(_as_dicts(messages), max_tokens):
                    text += piece
                    yield ChatResponse(
                        message=ChatMessage(role="assistant", content=text), delta=piece
                    )

            return gen()

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kw: Any) -> CompletionResponse:
            text = self._model.complete([{"role": "user", "content": prompt}], max_tokens)
            return CompletionResponse(text=text)

        @llm_completion_callback()
        def stream_complete(
            self, prompt: str, formatted: bool = False, **kw: Any
        ) -> Iterator[CompletionResponse]:
            def gen() -> Iterator[CompletionResponse]:
                text = ""
                for piece in self._model.stream([{"role": "user", "content": prompt}], max_tokens):
                    text += piece
                    yield CompletionResponse(text=text, delta=piece)

            return gen()

    return Wrapped(model)


PIPELINES = {"ours": Ours, "baseline": Baseline}
