"""A small OpenAI-compatible HTTP server on 127.0.0.1 for tests: scripted chat replies,
streamed as server-sent events like the real API, with failure modes on request.

As a process (for tests that kill it): python -m tests.fake_openai PORT [--chunk-delay S]
[--reply TEXT] [--status N] [--delay S] [--echo-key] [--like-fake-chat]
"""

from __future__ import annotations

import ctypes
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bot.models.embeddings import FakeEmbedder
from bot.models.fake_llm import FakeChat


class FakeOpenAI:
    def __init__(self, port: int = 0) -> None:
        self.replies: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.status = 200  # answer with this HTTP status
        self.delay = 0.0  # seconds before answering
        self.die_after: int | None = None  # close the stream after this many chunks
        self.chunk_delay = 0.0  # seconds between streamed chunks
        self.default_reply = "I don't know."  # when `replies` is empty
        # the first token's most likely tokens and their probabilities, sent when a request asks
        # for log probabilities (none: the server ignores that, as some do)
        self.top_tokens: list[tuple[str, float]] = []
        self.like_fake_chat = False  # reply as bot.models.llm.FakeChat would (quote, translate)
        self.echo_key = False  # a careless server: errors quote the Authorization header
        # die of SIGSEGV on the first prompt it is given, as a llama.cpp build does whose
        # instructions the CPU refuses (AMX where the hypervisor forbids it)
        self.crash = False
        # /v1/embeddings: texts -> vectors (default: the hashing FakeEmbedder)
        self.embed: Callable[[list[str]], Any] = FakeEmbedder().embed_passages
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # /v1/models
                self._json({"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization", "")}
                )
                # the embedded server's own endpoints (bot.models.llm_server), where no prompt
                # is read: a prefix's state (none read yet) and the prefixes kept
                if self.path.endswith("/newsqa/prefix") and not body.get("read"):
                    self._json({"tokens": 1000, "ready": 0, "seconds": 0.0})
                    return
                if self.path.endswith("/newsqa/retain"):
                    self._json({"dropped": 0})
                    return
                if fake.crash:
                    ctypes.string_at(0)  # a real segmentation fault, in this very thread
                time.sleep(fake.delay)
                if fake.status != 200:
                    said = (
                        f"bad key {self.headers.get('Authorization')}" if fake.echo_key else "boom"
                    )
                    self._json({"error": {"message": said, "type": "server_error"}}, fake.status)
                    return
                if self.path.endswith("/embeddings"):
                    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    data = [
                        {"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                        for i, v in enumerate(fake.embed(texts))
                    ]
                    self._json(
                        {
                            "object": "list",
                            "data": data,
                            "model": body["model"],
                            "usage": {"prompt_tokens": 0, "total_tokens": 0},
                        }
                    )
                    return
                reply = fake.replies.popleft() if fake.replies else fake.default_reply
                if fake.like_fake_chat:
                    reply = FakeChat().complete(body["messages"], 0)
                if body.get("stream"):
                    self._stream(reply)
                else:
                    message = {"role": "assistant", "content": reply}
                    choice: dict[str, Any] = {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": message,
                    }
                    if body.get("logprobs") and fake.top_tokens:
                        tops = [
                            {"token": t, "logprob": math.log(p), "bytes": None}
                            for t, p in fake.top_tokens
                        ]
                        first = {**tops[0], "top_logprobs": tops}
                        choice["logprobs"] = {"content": [first]}
                    self._json(
                        {
                            "id": "c1",
                            "object": "chat.completion",
                            "created": 0,
                            "model": body["model"],
                            "choices": [choice],
                        }
                    )

            def _json(self, data: dict[str, Any], status: int = 200) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, reply: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                pieces = re.findall(r"\S+\s*|\s+", reply)
                for n, piece in enumerate(pieces):
                    if fake.die_after is not None and n >= fake.die_after:
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        return
                    choice = {"index": 0, "finish_reason": None, "delta": {"content": piece}}
                    chunk = {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": "fake",
                        "choices": [choice],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(fake.chunk_delay)
                done = {"index": 0, "finish_reason": "stop", "delta": {}}
                last = {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "fake",
                    "choices": [done],
                }
                self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()

        return Handler


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--reply", default="Hai Phong is a port city in the north of Vietnam [1].")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering")
    parser.add_argument("--echo-key", action="store_true")
    quote = "reply as LLM_BACKEND=fake: quote the first source, cite it"
    parser.add_argument("--like-fake-chat", action="store_true", help=quote)
    args = parser.parse_args()
    fake = FakeOpenAI(args.port)
    fake.chunk_delay, fake.default_reply = args.chunk_delay, args.reply
    fake.status, fake.echo_key, fake.delay = args.status, args.echo_key, args.delay
    fake.like_fake_chat = args.like_fake_chat
    print(f"fake OpenAI server on {fake.base_url}", flush=True)
    fake.server.serve_forever()


if __name__ == "__main__":
    main()
