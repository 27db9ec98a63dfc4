"""The OpenAI chat protocol, served by app.py beside the page, so that the `openai` SDK, Open
WebUI, LibreChat or an editor plugin can ask the articles:

    POST /v1/chat/completions   streamed (server-sent events) or not
    GET  /v1/models             one model, "newsqa"

The last message is the question; the earlier user and assistant messages are its conversation.
The reply's text is the cited answer, [n] markers kept, then its sources as a list (title,
language, link); the structured answer (citations, passages, the sentences and their evidence:
`Answer.to_dict`) is the extra field `newsqa` of the response, or of the last chunk of a stream.
Errors are OpenAI error objects carrying the message the chat shows. With UI_USERNAME and
UI_PASSWORD set, requests need them: `Authorization: Bearer <UI_PASSWORD>` (what OpenAI clients
send as their API key) or HTTP Basic. Answers take the page's slots (Backend.answers).
The formats are in webui/openai_protocol.py; this module serves them.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import logging
import threading
import uuid
from collections.abc import Generator
from itertools import chain
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from bot.answering.records import Done, Rewritten, Sources, Token
from bot.errors import BotError, unexpected
from webui.asking import asking
from webui.backend import Backend
from webui.openai_protocol import (
    ApiError,
    ChatRequest,
    check_model,
    chunk,
    completion,
    ending,
    model_info,
    read_request,
    sse,
)
from webui.serving import QueueFull

log = logging.getLogger("newsqa.api")


def openai_app(backend: Backend, auth: list[tuple[str, str]] | None) -> FastAPI:
    """A FastAPI app with the /v1 routes; app.py mounts the page on it."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = ApiError(400, "The request body is not a JSON object.", "invalid_request_error")
        return JSONResponse(error.body(), status_code=400)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s failed", request.url.path, exc_info=exc)
        return JSONResponse(ApiError(500, unexpected(exc), "server_error").body(), status_code=500)

    @app.get("/v1/models")
    def models(request: Request) -> dict[str, Any]:
        _check_login(request, auth)
        return {"object": "list", "data": [model_info()]}

    @app.get("/v1/models/{name}")
    def model(name: str, request: Request) -> dict[str, Any]:
        _check_login(request, auth)
        check_model(name)
        return model_info()

    @app.post("/v1/chat/completions", response_model=None)
    def chat_completions(request: Request, body: dict[str, Any]) -> Any:
        _check_login(request, auth)
        asked = read_request(body, backend.settings.max_question_chars)
        try:
            if asked.stream:
                return _streamed(backend, asked)
            with asking(backend, asked.question, bounded=True) as turn:
                return completion(turn.answer())
        except QueueFull as exc:
            raise ApiError(429, str(exc), "rate_limit_error", "rate_limit_exceeded") from None
        except BotError as exc:  # not ready, the index unreachable: what the chat says
            raise ApiError(503, str(exc), "server_error", "unavailable") from None

    return app


def _check_login(request: Request, auth: list[tuple[str, str]] | None) -> None:
    if not auth:
        return
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given: list[tuple[str, str]] = []
    if scheme.lower() == "bearer":
        key = value.strip()  # the password, or user:password
        user, sep, password = key.partition(":")
        given = [(name, key) for name, _ in auth] + ([(user, password)] if sep else [])
    elif scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except ValueError:
            user = password = ""
        given = [(user, password)]
    for user, password in given:
        for name, secret in auth:
            same_user = hmac.compare_digest(user.encode(), name.encode())
            if same_user & hmac.compare_digest(password.encode(), secret.encode()):
                return
    raise ApiError(
        401,
        "This chat needs its login: send UI_PASSWORD as the API key "
        "(Authorization: Bearer …) or the username and password as HTTP Basic.",
        "invalid_request_error",
        "invalid_api_key",
    )


def _streamed(backend: Backend, request: ChatRequest) -> StreamingResponse:
    """Server-sent chunks. The queue, retrieval and the question's checks come first, so that
    their errors are HTTP errors; the stream's generator then holds the answer slot until it
    ends or is dropped (the client went away)."""
    held = contextlib.ExitStack()
    try:
        turn = held.enter_context(asking(backend, request.question, bounded=True))
        events = turn.stream()
        first = next(events)
        while isinstance(first, Rewritten):  # the Sources, after retrieval
            first = next(events)
    except BaseException:
        held.close()
        raise
    chunks = _chunks(first, events, held)
    head = next(chunks)  # started: closing it now gives the ticket back
    return _Stream(_Closing(head, chunks))


class _Closing:
    """The chunks, first `head`; `close` may come from another thread while a chunk is being
    made, and waits for it."""

    def __init__(self, head: str, chunks: Generator[str, None, None]) -> None:
        self._head: str | None = head
        self._chunks, self._lock = chunks, threading.Lock()

    def __iter__(self) -> _Closing:
        return self

    def __next__(self) -> str:
        with self._lock:
            head, self._head = self._head, None
            return head if head is not None else next(self._chunks)

    def close(self) -> None:
        with self._lock:
            self._chunks.close()


class _Stream(StreamingResponse):
    """Server-sent events that close their chunks' generator when the response ends, however it
    ends: when the client leaves mid-answer, the generator's `finally` closes the LLM's stream
    and gives the answer slot back at once (left to the garbage collector, it could wait)."""

    def __init__(self, chunks: _Closing) -> None:
        super().__init__(chunks, media_type="text/event-stream")
        self._closing = chunks

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # also when the request was cancelled
                await anyio.to_thread.run_sync(self._closing.close)


def _chunks(
    first: Any, events: Generator[Any, None, None], held: contextlib.ExitStack
) -> Generator[str, None, None]:
    ident = f"chatcmpl-{uuid.uuid4().hex}"
    streamed = ""
    try:
        for event in chain([first], events):
            if isinstance(event, Sources):
                passages = [{"n": n, **hit.to_dict()} for n, hit in enumerate(event.passages, 1)]
                yield chunk(
                    ident, {"role": "assistant", "content": ""}, extra={"passages": passages}
                )
            elif isinstance(event, Token) and event.text:
                streamed += event.text
                yield chunk(ident, {"content": event.text})
            elif isinstance(event, Done):
                yield from ending(ident, event.answer, streamed)
    except Exception as exc:  # the stream has begun: the error is its last event
        log.exception("/v1 stream failed")
        message = str(exc) if isinstance(exc, BotError) else unexpected(exc)
        yield sse(ApiError(500, message, "server_error").body())
    finally:
        events.close()  # the LLM's stream with it, when the client went away
        held.close()  # the answer slot
    yield "data: [DONE]\n\n"
