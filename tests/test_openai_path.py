"""The OpenAI protocol path, streaming included, against a fake OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.answering.pipeline import answer, stream_answer
from bot.answering.question import Question
from bot.answering.records import Token
from bot.deps import build_deps
from bot.errors import BotError
from bot.models.llm import OpenAIChat, make_llm
from bot.settings import Settings
from tests.conftest import ROOT
from tests.fake_openai import FakeOpenAI

# replies the citation check supports (the hashing embedder finds their words in passage [1])
CHAIRMAN = "Nguyen Van Tung is the Chairman of Hai Phong People's Committee [1]."
TWO = f"{CHAIRMAN} He is also Vice Secretary of Hai Phong Municipal Party Committee [1]."


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def _settings(base: Settings, server: FakeOpenAI, **extra: object) -> Settings:
    return base.model_copy(
        update={
            "llm_backend": "auto",
            "llm_base_url": server.base_url,
            "llm_model": "fake-model",
            **extra,
        }
    )


def test_streamed_answer_through_the_openai_client(
    fake_settings: Settings, server: FakeOpenAI
) -> None:
    server.replies.append(TWO)
    settings = _settings(fake_settings, server, llm_api_key=SecretStr("sk-test"))
    deps = build_deps(settings)
    assert isinstance(deps.llm, OpenAIChat)
    events = list(stream_answer(deps, "Who is the Chairman of the People's Committee?"))
    tokens = [e.text for e in events if isinstance(e, Token)]
    assert len(tokens) > 2, "the answer arrives in pieces"
    result = events[-1].answer  # type: ignore[union-attr]
    assert result.text == TWO
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["stream"] is True and request["body"]["model"] == "fake-model"
    assert request["auth"] == "Bearer sk-test"
    assert "Who is the Chairman" in request["body"]["messages"][-1]["content"]
    assert "first_token_s" in result.timings and result.timings["tokens"] >= 3


def test_the_rewrite_uses_a_plain_completion(fake_settings: Settings, server: FakeOpenAI) -> None:
    server.replies.extend(["Who chairs the Hai Phong People's Committee?", CHAIRMAN])
    deps = build_deps(_settings(fake_settings, server))
    history = [
        {"role": "user", "content": "Tell me about the People's Committee."},
        {"role": "assistant", "content": "It governs the city [1]."},
    ]
    result = answer(deps, Question("Who chairs it?", history))
    assert [r["body"].get("stream", False) for r in server.requests] == [False, True]
    assert result.standalone_question == "Who chairs the Hai Phong People's Committee?"


@pytest.mark.reliability
def test_an_unreachable_llm_names_the_url_and_setting_and_keeps_the_passages(
    fake_settings: Settings,
) -> None:
    settings = fake_settings.model_copy(
        update={"llm_backend": "auto", "llm_base_url": "http://127.0.0.1:9/v1"}
    )
    result = answer(build_deps(settings), "Who is the Chairman of the People's Committee?")
    assert "Cannot reach the LLM at http://127.0.0.1:9/v1 (LLM_BASE_URL)" in result.error
    assert result.passages and not result.refused


def test_a_failing_llm_says_so(fake_settings: Settings, server: FakeOpenAI) -> None:
    server.status = 500
    chat = make_llm(_settings(fake_settings, server))
    with pytest.raises(BotError, match=r"failed \(HTTP 500\)"):
        chat.complete([{"role": "user", "content": "hi"}], 10)


@pytest.mark.reliability
def test_a_slow_llm_times_out_with_the_setting_named(
    fake_settings: Settings, server: FakeOpenAI
) -> None:
    server.delay = 2.0
    chat = make_llm(_settings(fake_settings, server, llm_timeout=0.5))
    with pytest.raises(BotError, match=r"within 0 s \(LLM_TIMEOUT\)|within 1 s \(LLM_TIMEOUT\)"):
        list(chat.stream([{"role": "user", "content": "hi"}], 10))


@pytest.mark.slow
def test_cli_streams_then_lists_sources_and_gives_json(
    fake_settings: Settings, server: FakeOpenAI, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "INDEX_DIR": str(fake_settings.index_dir),
        "EMBEDDER": "fake",
        "LLM_BASE_URL": server.base_url,
    }
    question = "Who is the Chairman of the People's Committee?"
    server.replies.append(CHAIRMAN)
    done = subprocess.run(
        [sys.executable, "-m", "bot", question],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(CHAIRMAN)
    assert "Sources:\n[1] " in done.stdout
    server.replies.append(CHAIRMAN)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--json", question],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    data = json.loads(done.stdout)
    assert data["answer"] == CHAIRMAN and data["refused"] is False
    assert data["verdict"] == "supported"
    assert data["citations"][0]["n"] == 1 and data["passages"][0]["given_to_model"] is True


@pytest.mark.slow
def test_cli_reports_a_bad_question_without_a_traceback(fake_settings: Settings) -> None:
    env = {
        **os.environ,
        "INDEX_DIR": str(fake_settings.index_dir),
        "EMBEDDER": "fake",
        "LLM_BACKEND": "fake",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "   "],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "empty" in done.stderr and "Traceback" not in done.stderr


def test_one_client_and_connection_pool_serves_every_call(
    fake_settings: Settings, server: FakeOpenAI
) -> None:
    llm = make_llm(_settings(fake_settings, server))
    assert isinstance(llm, OpenAIChat)
    server.replies.extend(["one", "two"])
    first = llm._client()
    assert llm.complete([{"role": "user", "content": "hi"}], 4) == "one"
    assert llm.complete([{"role": "user", "content": "hi"}], 4) == "two"
    assert llm._client() is first
