"""The answering pipeline's parts, built once and passed around explicitly."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from bot.index.postings_cache import PostingsCache
from bot.index.store import Index, open_index
from bot.models.embeddings import Embedder, make_embedder
from bot.models.llm import ChatModel, make_models
from bot.models.prefix_server import PrefixServer
from bot.models.vector_cache import VectorCache
from bot.retrieval.retriever import Retriever
from bot.retrieval.translated_words import TranslatedWords
from bot.settings import Settings
from bot.text.language import NAMES


class Activity:
    """Counts the questions being answered with these deps; the warm-up of articles
    (bot.warmup) waits while any is."""

    def __init__(self) -> None:
        self._n = 0
        self._idle = threading.Condition()

    @contextlib.contextmanager
    def asking(self) -> Iterator[None]:
        with self._idle:
            self._n += 1
        try:
            yield
        finally:
            with self._idle:
                self._n -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._n == 0, timeout)


@dataclass
class Deps:
    settings: Settings
    embedder: Embedder
    index: Index
    retriever: Retriever
    llm: ChatModel
    prefix_server: PrefixServer | None = None  # the embedded server's endpoints beside /v1
    sentences: VectorCache | None = None  # passage-side vectors of article sentences
    activity: Activity = field(default_factory=Activity)  # questions being answered

    def __post_init__(self) -> None:
        if self.sentences is None:
            self.sentences = VectorCache(self.embedder.embed_passages)

    def close(self) -> None:
        self.llm.close()


def build_deps(
    settings: Settings | None = None,
    llm: ChatModel | None = None,
    embedder: Embedder | None = None,
) -> Deps:
    """The parts the settings name; a model given as `llm` (a test's, a client's own) comes
    without the embedded server's endpoints."""
    settings = settings or Settings()
    embedder = embedder or make_embedder(settings)
    index = open_index(settings, embedder.name, embedder.dim)
    retriever = make_retriever(settings, index, embedder)
    prefix_server = None
    if llm is None:
        llm, prefix_server = make_models(settings)
    return Deps(settings, embedder, index, retriever, llm, prefix_server)


def make_retriever(settings: Settings, index: Index, embedder: Embedder) -> Retriever:
    """The retriever as every process of the app builds it from the settings."""
    pivot = settings.pivot_language
    return Retriever(
        index,
        embedder,
        memory_max=settings.dense_memory_max,
        postings=PostingsCache(settings.postings_dir),
        translated=TranslatedWords(index, pivot) if pivot in NAMES else None,
    )


def stop_on_sigterm() -> None:
    """Take SIGTERM (`kill`, systemd, docker) as Ctrl-C, so that the `finally` which closes the
    deps runs and stops the embedded LLM server this process started (it runs in a session of
    its own and would outlive us). For entry points only: call it from `main()`."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
