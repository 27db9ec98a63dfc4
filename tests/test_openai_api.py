"""The OpenAI-compatible API (webui/openai_api.py) asked with the official `openai` client, over
HTTP to uvicorn on 127.0.0.1, in front of a Backend with the fake model and embedder."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
import uvicorn

from bot.models.fake_llm import FakeChat
from bot.net import free_port
from tests.fake_models import Dying, Endless, Silent
from webui.backend import Backend
from webui.chat import make_respond
from webui.openai_api import openai_app
from webui.openai_protocol import SOURCES
from webui.serving import AnswerQueue, QueueFull

QUESTION = "What did To Lam ask of Hai Phong?"


@dataclass
class Api:
    backend: Backend
    url: str

    def client(self, key: str = "unused") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, timeout=60)


def _serve(backend: Backend, auth: list[tuple[str, str]] | None = None) -> Iterator[Api]:
    port = free_port()
    config = uvicorn.Config(
        openai_app(backend, auth),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # set once it listens
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        thread.join(0.01)
    yield Api(backend, f"http://127.0.0.1:{port}/v1")
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def api(backend: Backend) -> Iterator[Api]:
    yield from _serve(backend)


def _ask(text: str = QUESTION, **extra: Any) -> dict[str, Any]:
    return {"model": "newsqa", "messages": [{"role": "user", "content": text}], **extra}


def test_models_lists_newsqa(api: Api) -> None:
    assert [m.id for m in api.client().models.list()] == ["newsqa"]


def test_a_cited_answer_with_its_sources_listed_and_structured(api: Api) -> None:
    reply = api.client().chat.completions.create(**_ask())
    text = reply.choices[0].message.content or ""
    answer, _, listed = text.partition(SOURCES)
    assert answer.endswith("[1]") and reply.choices[0].finish_reason == "stop"
    extra = (reply.model_extra or {})["newsqa"]
    cited = extra["citations"][0]
    assert cited["n"] == 1 and answer.removesuffix("[1]").strip() in cited["text"]
    assert listed.startswith(f"- [1] {cited['title']} (") and cited["source_url"] in listed
    assert extra["passages"] and extra["answer"] == answer and not extra["error"]


def test_the_stream_carries_the_same_answer_then_the_structured_one(api: Api) -> None:
    client = api.client()
    whole = client.chat.completions.create(**_ask()).choices[0].message.content
    chunks = list(client.chat.completions.create(**_ask(), stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (chunks[0].model_extra or {})["newsqa"]["passages"]  # the sources come first
    words = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert words  # a one-sentence reply comes whole once checked, a longer one word by word
    assert "".join(w or "" for w in words) == whole
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["newsqa"]["citations"][0]["n"] == 1


def test_earlier_messages_are_the_conversation_and_options_filter(api: Api) -> None:
    client = api.client()
    first = client.chat.completions.create(**_ask()).choices[0].message.content or ""
    llm = api.backend.deps.llm if api.backend.deps else None
    assert isinstance(llm, FakeChat) and SOURCES in first
    llm.calls.clear()
    messages: list[Any] = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first},
        {"role": "user", "content": [{"type": "text", "text": "And its port?"}]},
    ]
    reply = client.chat.completions.create(
        model="newsqa", messages=messages, extra_body={"languages": ["fr"], "top_k": 3}
    )
    rewrite = llm.calls[0][-1]["content"]
    assert "To Lam" in rewrite and "And its port?" in rewrite
    assert "Sources:" not in rewrite and "You are helpful" not in rewrite
    passages = (reply.model_extra or {})["newsqa"]["passages"]
    assert len(passages) == 3 and {p["lang"] for p in passages} == {"fr"}


def test_bad_requests_get_openai_errors_with_the_chats_message(api: Api) -> None:
    client = api.client()
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(**{**_ask(), "model": "gpt-4o"})
    with pytest.raises(openai.BadRequestError, match="empty") as empty:
        client.chat.completions.create(**_ask("   "))
    assert empty.value.body["param"] == "messages"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="too long"):
        client.chat.completions.create(**_ask("why " * 1000), stream=True)
    with pytest.raises(openai.BadRequestError, match="last message"):
        client.chat.completions.create(
            model="newsqa", messages=[{"role": "assistant", "content": "Hello."}]
        )
    raw = httpx.post(f"{api.url}/chat/completions", content=b"{not json", timeout=30)
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"


def test_a_dying_llm_keeps_the_partial_answer_and_the_passages(api: Api) -> None:
    assert api.backend.deps is not None
    api.backend.deps.llm = Dying()
    client = api.client()
    reply = client.chat.completions.create(**_ask())
    text = reply.choices[0].message.content or ""
    assert text.startswith("The city wants to grow [1].") and "⚠️ The LLM at" in text
    extra = (reply.model_extra or {})["newsqa"]
    assert "stopped answering" in extra["error"] and extra["passages"]
    chunks = list(client.chat.completions.create(**_ask(), stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed.split() == text.split()  # the stream kept the reply's own spaces
    assert "stopped answering" in (chunks[-1].model_extra or {})["newsqa"]["error"]


def test_an_llm_that_says_nothing_is_an_error_that_keeps_the_passages(api: Api) -> None:
    assert api.backend.deps is not None
    api.backend.deps.llm = Silent()
    client = api.client()
    with pytest.raises(openai.APIStatusError, match="Cannot reach the LLM") as failed:
        client.chat.completions.create(**_ask())
    assert failed.value.status_code == 502
    assert failed.value.body["newsqa"]["passages"]  # type: ignore[index]
    stream = client.chat.completions.create(**_ask(), stream=True)
    with pytest.raises(openai.APIError, match="Cannot reach the LLM") as mid:
        list(stream)
    assert mid.value.body["newsqa"]["passages"]  # type: ignore[index]


def test_with_a_login_the_api_takes_it_as_bearer_key_or_basic(backend: Backend) -> None:
    for api in _serve(backend, [("reader", "correct:horse")]):  # a colon in the password
        with pytest.raises(openai.AuthenticationError, match="login"):
            api.client().models.list()
        with pytest.raises(openai.AuthenticationError):
            api.client("correct:horse battery").chat.completions.create(**_ask())
        assert api.client("correct:horse").chat.completions.create(**_ask()).choices
        assert api.client("reader:correct:horse").models.list().data
        basic = httpx.get(f"{api.url}/models", auth=("reader", "correct:horse"), timeout=30)
        assert basic.status_code == 200


# -- the one answer queue ------------------------------------------------------------------------
def test_the_queue_runs_its_limit_and_turns_away_beyond_its_size() -> None:
    queue = AnswerQueue(limit=1, max_waiting=1)
    first = queue.ticket()
    assert first.wait(0) and queue.waiting == 0
    second = queue.ticket()
    assert not second.wait(0) and queue.waiting == 1
    with pytest.raises(QueueFull, match="UI_QUEUE_SIZE"):
        queue.ticket()
    page = queue.ticket(bounded=False)  # Gradio's queue bounds the page's own questions
    assert queue.waiting == 2
    page.close()
    first.close()
    first.close()  # twice: no second release
    assert second.wait(0) and not queue.ticket().wait(0)
    second.close()


def test_a_full_queue_answers_429(api: Api) -> None:
    api.backend.answers = AnswerQueue(limit=1, max_waiting=1)
    held = api.backend.answers.ticket()
    assert held.wait(0)
    waiting = api.backend.answers.ticket()
    with pytest.raises(openai.RateLimitError, match="busy"):
        api.client().chat.completions.create(**_ask())
    waiting.close()
    held.close()
    assert api.client().chat.completions.create(**_ask()).choices


def test_the_page_waits_while_the_api_holds_the_slot(backend: Backend) -> None:
    backend.answers = AnswerQueue(limit=1, max_waiting=5)
    held = backend.answers.ticket()
    assert held.wait(0)
    frames = make_respond(backend)(QUESTION, [], [], {}, 5, [], False)
    for chat, *_ in frames:
        if "Waiting for another answer" in chat[-1]["content"]:
            held.close()  # the API's answer ends
            break
    else:
        pytest.fail("the page did not wait for the slot")
    *_, (chat, _, turns, *_) = frames
    assert turns[-1]["content"].endswith("[1]") and len(turns) == 2


def test_a_client_that_leaves_mid_stream_frees_the_slot_and_the_llm(api: Api) -> None:
    assert api.backend.deps is not None
    endless = api.backend.deps.llm = Endless()
    api.backend.answers = AnswerQueue(limit=1, max_waiting=5)
    stream = api.client().chat.completions.create(**_ask(), stream=True)
    for chunk in stream:
        if "more [1]" in (chunk.choices[0].delta.content or ""):
            break
    stream.close()
    assert endless.closed.wait(30)  # the LLM's stream was closed with it
    api.backend.deps.llm = FakeChat()
    assert api.client().chat.completions.create(**_ask()).choices  # the slot is free again
