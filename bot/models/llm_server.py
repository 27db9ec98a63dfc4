"""The embedded LLM server: llama-cpp-python's OpenAI-compatible server, plus articles read once.

    python -m bot.models.llm_server --model GGUF --alias NAME --port P --threads T \
        --n_ctx N --prefix-dir DIR --prefix-budget-mb MB

Beside /v1/..., GET /newsqa/progress says how far the model has read the prompt it answers,
and POST /newsqa/prefix reads a prompt prefix (the constant
instructions and an article: bot.answering.article) and keeps the model's state after it on disk
(bot.models.prefix_store). Every chat completion whose prompt starts with a stored prefix loads
that state instead of reading the article again (the 5,000-token French article: ~200 s to read,
~0.3 s to load). Reading goes in steps of a few hundred tokens; between steps it gives way to any
waiting chat request and, when it stops early, keeps what it read so far, so a question never
waits behind a warm-up for more than one step.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import faulthandler
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import uvicorn
from fastapi import Body
from llama_cpp import llama_chat_format
from llama_cpp.llama_cache import BaseLlamaCache
from llama_cpp.server import app as server_app
from llama_cpp.server.settings import ModelSettings, ServerSettings
from starlette.concurrency import run_in_threadpool

from bot.models.cpu import build_info
from bot.models.prefix_store import SENTINEL, PrefixStore

STEP_TOKENS = 128  # read between two checks for a waiting chat request (~4 s on 2 cores)


class StoredState(llama_cpp.LlamaState):
    """A stored prefix as llama-cpp-python's cache hands it over; its bytes are read from disk
    only when the model actually loads it (the cache is asked on every completion)."""

    def __init__(self, store: PrefixStore, name: str, n_ctx: int, n_vocab: int) -> None:
        tokens = store.tokens(name)
        ids = np.full(n_ctx, -1, dtype=np.intc)
        ids[: len(tokens)] = tokens
        # The scores are never sampled from: a restored state always decodes at least one token.
        self._store, self._name = store, name
        super().__init__(ids, np.zeros((1, n_vocab), np.single), len(tokens), b"", 0, 0)
        self.llama_state_size = int((store.folder / f"{name}.state").stat().st_size)

    @property
    def llama_state(self) -> bytes:
        return self._store.read(self._name)

    @llama_state.setter
    def llama_state(self, value: bytes) -> None:
        pass


class PrefixCache(BaseLlamaCache):
    """llama-cpp-python's prompt cache backed by the PrefixStore: read-only for completions."""

    def __init__(self, store: PrefixStore, llama: llama_cpp.Llama) -> None:
        super().__init__(store.budget)
        self.store, self.llama = store, llama
        # what the recent completions could reuse, newest last, for /newsqa/stats: an answer's
        # own reading is followed by short ones (its words put in one language)
        self.recent: deque[dict[str, int]] = deque(maxlen=8)

    @property
    def last(self) -> dict[str, int]:
        return self.recent[-1] if self.recent else {}

    @property
    def cache_size(self) -> int:
        return self.store.size

    def __getitem__(self, key: Any) -> llama_cpp.LlamaState:
        name, n = self.store.best(key)
        memory = int(llama_cpp.Llama.longest_token_prefix(self.llama._input_ids.tolist(), key))
        self.recent.append({"prompt": len(key), "stored": n, "in_memory": memory})
        if name is None:
            raise KeyError("no stored prefix")
        return StoredState(self.store, name, self.llama.n_ctx(), self.llama.n_vocab())

    def __contains__(self, key: Any) -> bool:
        return self.store.best(key)[0] is not None

    def __setitem__(self, key: Any, value: Any) -> None:
        pass  # only /newsqa/prefix stores states


def _snapshot(llama: llama_cpp.Llama) -> bytes:
    ctx = llama._ctx.ctx
    size = llama_cpp.llama_state_get_size(ctx)
    buffer = (ctypes.c_uint8 * size)()
    n = llama_cpp.llama_state_get_data(ctx, buffer, size)
    return bytes(memoryview(buffer)[:n])


class Prefixes:
    """The /newsqa/prefix endpoint's work, on the one model the server holds."""

    def __init__(self, llama: llama_cpp.Llama, store: PrefixStore) -> None:
        self.llama, self.store = llama, store
        eos, bos = llama.token_eos(), llama.token_bos()
        self._format = llama_chat_format.Jinja2ChatFormatter(
            template=llama.metadata["tokenizer.chat_template"],
            eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
        )
        self.cache = PrefixCache(store, llama)
        llama.set_cache(self.cache)
        # Completions save the state after every reply through the cache; that copy (KV cache
        # plus a 300 MB logits buffer) is work thrown away, as only warm-ups store prefixes.
        llama.save_state = lambda: None  # type: ignore[method-assign,assignment,return-value]
        self._tokens_lock = threading.Lock()

    def tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt tokens of `messages` up to SENTINEL (in the last message), exactly as the
        chat handler would tokenize the whole prompt, minus two tokens at the cut that the text
        following it may merge with."""
        rendered = self._format(messages=messages)  # type: ignore[arg-type]
        text = rendered.prompt
        cut = text.find(SENTINEL)
        if cut < 0:
            raise ValueError("the prefix messages do not hold the sentinel")
        with self._tokens_lock:
            tokens = self.llama.tokenize(
                text[:cut].encode("utf-8"), add_bos=not rendered.added_special, special=True
            )
        return tokens[:-2]

    def status(self, tokens: list[int]) -> int:
        return self.store.best(tokens)[1]

    def read(self, label: str, tokens: list[int], budget: int, waiting: Any) -> int:
        """Read up to `budget` more tokens of the prefix (stopping early when a chat request
        waits) and store the state; the number of tokens stored."""
        llama = self.llama
        name, stored = self.store.best(tokens)
        memory = int(llama_cpp.Llama.longest_token_prefix(llama._input_ids.tolist(), tokens))
        if name is not None and stored >= len(tokens):
            return stored
        if name is not None and stored > memory:
            llama.load_state(StoredState(self.store, name, llama.n_ctx(), llama.n_vocab()))
            memory = stored
        llama.n_tokens = memory
        llama._ctx.kv_cache_seq_rm(-1, memory, -1)
        done, target = memory, min(len(tokens), memory + budget)
        while done < target:
            step = tokens[done : min(target, done + STEP_TOKENS)]
            llama.eval(step)
            done += len(step)
            if waiting():
                break
        if done > stored:
            self.store.put(label, tokens[:done], _snapshot(llama))
        return done


class PromptProgress:
    """How far the model has read the prompt of the completion under way: its generate() is
    watched for the prompt's length, and llama.cpp counts what it has evaluated (n_tokens,
    a reused prefix included) batch by batch."""

    def __init__(self, llama: Any) -> None:
        self.llama, self.prompt = llama, 0
        self._current: object | None = None
        original = llama.generate

        def generate(tokens: list[int], *args: Any, **kwargs: Any) -> Any:
            mine = self._current = object()
            self.prompt = len(tokens)
            try:
                yield from original(tokens, *args, **kwargs)
            finally:
                # an earlier completion's generator may be closed late (garbage-collected
                # after the next one started): only the latest one ends the report
                if self._current is mine:
                    self.prompt, self._current = 0, None

        llama.generate = generate

    def report(self) -> dict[str, int]:
        prompt = self.prompt
        return {"prompt": prompt, "read": min(int(self.llama.n_tokens), prompt)}


def build_app(args: argparse.Namespace) -> Any:
    # interrupt_requests (on by default) ends a stream early when another request comes: a
    # translation clicked while an answer streams, or another process sharing the server, then
    # cut the answer off mid-reply. Requests wait their turn instead.
    server_settings = ServerSettings(host="127.0.0.1", port=args.port, interrupt_requests=False)
    model_settings = ModelSettings(
        model=args.model,
        model_alias=args.alias,
        n_ctx=args.n_ctx,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    app = server_app.create_app(server_settings=server_settings, model_settings=[model_settings])
    proxy = server_app._llama_proxy
    if proxy is None:
        raise RuntimeError("llama_cpp.server did not load the model")
    store = PrefixStore(Path(args.prefix_dir), int(args.prefix_budget_mb * 1024 * 1024))
    prefixes = Prefixes(proxy(None), store)
    progress = PromptProgress(prefixes.llama)

    @app.post("/newsqa/prefix")
    async def prefix(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        """{"messages", "label", "read": tokens to read at most (0: only report)} ->
        {"tokens": the prefix's length, "ready": how many of them are stored, "seconds"}."""
        started = time.perf_counter()
        messages, budget = body["messages"], int(body.get("read", 0))
        tokens = await run_in_threadpool(prefixes.tokens, messages)
        if budget <= 0:
            ready = prefixes.status(tokens)
        else:
            async with contextlib.asynccontextmanager(server_app.get_llama_proxy)():
                ready = await run_in_threadpool(
                    prefixes.read,
                    str(body["label"]),
                    tokens,
                    budget,
                    server_app.llama_outer_lock.locked,
                )
        return {"tokens": len(tokens), "ready": ready, "seconds": time.perf_counter() - started}

    @app.post("/newsqa/retain")
    async def retain(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        """{"labels": [...]}: drop the stored prefixes of articles no longer indexed as such."""
        return {"dropped": store.retain(body["labels"])}

    @app.get("/newsqa/progress")
    async def reading() -> dict[str, int]:
        """{"prompt": tokens of the prompt being answered (0: none), "read": how many of them
        the model has read}; answered while a completion runs."""
        return progress.report()

    @app.get("/newsqa/stats")
    async def stats() -> dict[str, Any]:
        entries = store.entries()
        return {
            "entries": [e.__dict__ for e in entries],
            "bytes": store.size,
            "budget": store.budget,
            "last_completion": prefixes.cache.last,
            "recent_completions": list(prefixes.cache.recent),
        }

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--n_ctx", type=int, default=8192)
    parser.add_argument("--prefix-dir", required=True)
    parser.add_argument("--prefix-budget-mb", type=float, default=2048)
    args = parser.parse_args(argv)
    # a crash in llama.cpp leaves the Python stack in the log (the parent names the signal)
    faulthandler.enable()
    print(f"llama-cpp-python {llama_cpp.__version__}: {build_info()}", flush=True)
    uvicorn.run(build_app(args), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
