"""The OpenAI chat protocol's requests and replies, as webui/openai_api.py serves them: a
request read into a ChatRequest (the question, its conversation, our options), an Answer
written as a chat completion or as its stream's chunks (server-sent events), errors as OpenAI
error objects. Plain functions over dicts and strings, tested without a server."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bot.answering.question import Question, check_question
from bot.answering.records import Answer
from bot.errors import BotError
from bot.retrieval.records import Filters
from bot.text.language import language_name

log = logging.getLogger("newsqa.api")


MODEL = "newsqa"
SOURCES = "\n\n---\nSources:\n"  # what follows is our list; taken off again in the history
CORRECTED = "\n\n---\nChecked against the passages, the answer reads:\n\n"


class ApiError(Exception):
    """An OpenAI error object (`body`) and its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str,
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code
        self.param, self.extra = param, extra

    def body(self) -> dict[str, Any]:
        error = {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
        return {"error": {**error, **({MODEL: self.extra} if self.extra else {})}}


@dataclass
class ChatRequest:
    """A chat completion request, read: the question with its conversation and our options
    (`top_k`, `languages`), and whether to stream the reply."""

    question: Question
    stream: bool


def model_info() -> dict[str, Any]:
    return {"id": MODEL, "object": "model", "created": 0, "owned_by": "newsqa"}


def check_model(name: Any) -> None:
    if name not in (None, "", MODEL):
        raise ApiError(
            404,
            f"The model {name!r} does not exist; this server has {MODEL!r}.",
            "invalid_request_error",
            "model_not_found",
        )


def read_request(body: dict[str, Any], max_chars: int) -> ChatRequest:
    """The question, its conversation and our options (`top_k`, `languages`) from a request."""
    check_model(body.get("model"))
    if body.get("n") not in (None, 1):
        raise _invalid("Only one answer per request (n=1).", "n")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("`messages` must be a list with the question last.", "messages")
    turns = [_message(m, i) for i, m in enumerate(messages)]
    if turns[-1]["role"] != "user":
        raise _invalid("The last message must be the user's question.", "messages")
    try:
        question = check_question(turns[-1]["content"], max_chars)
    except BotError as exc:
        raise _invalid(str(exc), "messages") from None
    history = [t for t in turns[:-1] if t["role"] in ("user", "assistant")]
    languages = body.get("languages") or []
    if isinstance(languages, str):
        languages = [code.strip() for code in languages.split(",") if code.strip()]
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool)):
        raise _invalid("`top_k` must be a whole number.", "top_k")
    filters = Filters(lang=[str(c) for c in languages])
    return ChatRequest(Question(question, history, filters, top_k), bool(body.get("stream")))


def _message(message: Any, i: int) -> dict[str, str]:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise _invalid(f"Message {i} must be an object with a `role`.", "messages")
    content = message.get("content") or ""
    if isinstance(content, list):  # content parts: the text ones count
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise _invalid(f"Message {i} has content that is not text.", "messages")
    if message["role"] == "assistant":
        content = content.split(CORRECTED)[-1].split(SOURCES)[0]  # our own reply, as answered
    return {"role": message["role"], "content": content}


def _invalid(message: str, param: str) -> ApiError:
    return ApiError(400, message, "invalid_request_error", param=param)


def sources_list(result: Answer) -> str:
    """The cited passages as the list that follows an answer: [n] title (language), link."""
    lines = []
    for c in result.citations:
        link = f", {c.source_url}" if c.source_url else ""
        lines.append(f"- [{c.n}] {c.title or c.doc_id} ({language_name(c.lang)}){link}")
    return SOURCES + "\n".join(lines) if lines else ""


def failed(result: Answer) -> ApiError:
    """The LLM failed before it wrote a word: an error, which keeps the passages."""
    log.warning("/v1 failed: %s", result.error)
    return ApiError(502, result.error, "server_error", "llm_failed", extra=result.to_dict())


def completion(result: Answer) -> dict[str, Any]:
    if result.error and result.text == result.error:
        raise failed(result)
    text = result.shown() + sources_list(result)
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
        "logprobs": None,
    }
    return {**head("chat.completion"), "choices": [choice], MODEL: result.to_dict()}


def head(kind: str, ident: str = "") -> dict[str, Any]:
    return {
        "id": ident or f"chatcmpl-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": MODEL,
    }


def ending(ident: str, result: Answer, streamed: str) -> Iterator[str]:
    """What the checked answer adds to the streamed text, the sources, then the answer whole."""
    if result.error and result.text == result.error:
        yield sse(failed(result).body())
        return
    shown = result.shown()
    base = streamed.rstrip()  # the checked text drops the reply's trailing spaces
    rest = shown[len(base) :].lstrip(" ") if shown.startswith(base) else CORRECTED + shown
    if rest + sources_list(result):
        yield chunk(ident, {"content": rest + sources_list(result)})
    yield chunk(ident, {}, "stop", extra=result.to_dict())


def chunk(
    ident: str,
    delta: dict[str, Any],
    finish: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
    body = {**head("chat.completion.chunk", ident), "choices": [choice]}
    return sse({**body, MODEL: extra} if extra is not None else body)


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
