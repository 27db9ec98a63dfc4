"""The answering pipeline's parts, built once and passed around explicitly."""

from __future__ import annotations

from dataclasses import dataclass

from bot.embeddings import Embedder, make_embedder
from bot.llm import ChatModel, make_llm
from bot.retrieval import Retriever
from bot.settings import Settings
from bot.store import Index, open_index


@dataclass
class Deps:
    settings: Settings
    embedder: Embedder
    index: Index
    retriever: Retriever
    llm: ChatModel

    def close(self) -> None:
        self.llm.close()


def build_deps(
    settings: Settings | None = None,
    llm: ChatModel | None = None,
    embedder: Embedder | None = None,
) -> Deps:
    settings = settings or Settings()
    embedder = embedder or make_embedder(settings)
    index = open_index(settings, embedder.name, embedder.dim)
    return Deps(settings, embedder, index, Retriever(index, embedder), llm or make_llm(settings))
