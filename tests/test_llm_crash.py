"""The embedded LLM server dies: a stand-in process (tests/crashing_llm.py, in place of
bot.models.llm_server) is killed by SIGSEGV on the first prompt it is given, as llama.cpp built
with AMX is on a CPU whose hypervisor refuses AMX. The reader is told so in words, on the page,
through /ask and /v1 and in the status line; the server is started again once, not in a loop;
the log of each run survives its restart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from gradio_client import Client
from playwright.sync_api import Browser, expect

from bot.errors import BotError
from bot.models.llm import OpenAIChat, make_llm
from bot.models.local_llm import ENDED_LINE
from tests.conftest import make_settings, own_model_dir, start_app, stop_app
from tests.test_browser import TIMEOUT_MS, browser  # noqa: F401  (the Chromium fixture)

pytestmark = pytest.mark.slow  # starts server processes

CRASH = "The local model stopped unexpectedly (signal 11: SIGSEGV, segmentation fault)"
GIVEN_UP = (
    "The local model is unavailable: it stopped unexpectedly again right after a "
    "restart (signal 11: SIGSEGV, segmentation fault)"
)
QUESTION = [{"role": "user", "content": "Is Hai Phong a port city?"}]


def _logs(model_dir: Path) -> list[Path]:
    return sorted((model_dir / "logs").glob("server-*.log"))


def _died_of_sigsegv(log: Path) -> None:
    text = log.read_text(errors="replace")
    assert "Fatal Python error: Segmentation fault" in text, text[-2000:]
    assert f"{ENDED_LINE}signal 11: SIGSEGV, segmentation fault" in text, text[-2000:]


@pytest.fixture
def crashing(tmp_path: Path) -> Iterator[OpenAIChat]:
    settings = make_settings(
        tmp_path,
        llm_backend="local",
        model_dir=own_model_dir(tmp_path),
        llm_server_module="tests.crashing_llm",
    )
    llm = make_llm(settings)
    assert isinstance(llm, OpenAIChat)
    yield llm
    llm.close()


def test_a_crash_is_told_in_words_restarted_once_and_then_not_again(
    crashing: OpenAIChat, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    with pytest.raises(BotError) as first:
        list(crashing.stream(QUESTION, 16))
    said = str(first.value)
    assert said.startswith(f"{CRASH} while reading the question; details in "), said
    [log] = _logs(model_dir)
    assert str(log) in said and "started again for the next question" in said
    _died_of_sigsegv(log)
    assert crashing.problem().startswith(CRASH), "the status line says it too"

    with pytest.raises(BotError) as second:  # started again, and dead again at once
        crashing.complete(QUESTION, 16)
    assert str(second.value).startswith(f"{GIVEN_UP} while answering, so it is not started")
    assert len(_logs(model_dir)) == 2 and log.exists(), "each run keeps its own log"
    _died_of_sigsegv(_logs(model_dir)[-1])

    with pytest.raises(BotError) as third:  # no third server
        list(crashing.stream(QUESTION, 16))
    assert str(third.value) == str(second.value) == crashing.problem()
    assert "LLM_BASE_URL" in str(third.value) and len(_logs(model_dir)) == 2


def test_the_app_tells_the_page_ask_v1_and_the_status_line(
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    """On the embedded defaults: the background reading of articles meets the crash first,
    the first question meets it again after the restart, and then nothing restarts it."""
    model_dir = own_model_dir(tmp_path)
    process, app = start_app(
        tmp_path,
        LLM_BACKEND="local",
        MODEL_DIR=str(model_dir),
        LLM_SERVER_MODULE="tests.crashing_llm",
    )
    try:
        page = browser.new_page()
        page.goto(app.url)
        status = page.locator("#status")
        expect(status).to_contain_text(f"{CRASH} while reading an article", timeout=TIMEOUT_MS)
        expect(status).to_contain_text("started again for the next question")

        client = Client(app.url, verbose=False)
        with pytest.raises(Exception, match=re.escape(GIVEN_UP)) as asked:
            client.predict(question="Is Hai Phong a port city?", api_name="/ask")
        assert "while reading the question, so it is not started again" in str(asked.value)

        api = openai.OpenAI(base_url=f"{app.url}v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIError, match=re.escape(GIVEN_UP)):
            api.chat.completions.create(model="newsqa", messages=QUESTION)  # type: ignore[arg-type]

        expect(status).to_contain_text(GIVEN_UP, timeout=TIMEOUT_MS)
        page.locator("#question textarea").fill("Who leads Hai Phong?")
        page.locator("#ask").click()
        expect(page.locator("#chat .bot").last).to_contain_text(GIVEN_UP, timeout=TIMEOUT_MS)
        page.close()
    finally:
        stop_app(process)
    logs = _logs(model_dir)
    assert len(logs) == 2, "started again once, not in a loop"
    for log in logs:
        _died_of_sigsegv(log)
