"""`python app.py` as scripts meet it: served on 127.0.0.1, asked through `gradio_client` and
through the `openai` client (the OpenAI-compatible API under /v1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from gradio_client import Client

from tests.conftest import ROOT, RunningApp, start_app, stop_app

pytestmark = pytest.mark.slow  # `make check` leaves it out

QUESTION = "What did To Lam ask of Hai Phong?"


def test_gradio_client_gets_a_cited_answer_with_its_passages(app_server: RunningApp) -> None:
    client = Client(app_server.url, verbose=False)
    result = client.predict(question=QUESTION, top_k=4, api_name="/ask")
    assert not result["refused"] and not result["error"]
    assert result["answer"].endswith("[1]")
    assert len(result["passages"]) == 4 and result["passages"][0]["given_to_model"]
    cited = result["citations"][0]
    assert cited["n"] == 1 and cited["text"] == result["passages"][0]["text"]
    # the fake model quotes the first sentence of [1]: the answer stands on that passage
    assert result["answer"].removesuffix("[1]").strip() in cited["text"]
    assert cited["title"] and cited["lang"] in {"en", "fr", "de", "th"}


def test_gradio_client_can_filter_by_language_and_send_history(app_server: RunningApp) -> None:
    client = Client(app_server.url, verbose=False)
    history = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "He asked it to grow [1]."},
    ]
    result = client.predict(
        question="And in French articles?",
        top_k=3,
        languages="fr",
        history=history,
        api_name="/ask",
    )
    assert result["passages"] and {p["lang"] for p in result["passages"]} == {"fr"}
    assert result["standalone_question"]


def test_the_openai_client_streams_a_cited_answer(app_server: RunningApp) -> None:
    client = openai.OpenAI(base_url=f"{app_server.url}v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["newsqa"]
    stream = client.chat.completions.create(
        model="newsqa", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    answer, _, listed = text.partition("\n\n---\nSources:\n")
    extra = (chunks[-1].model_extra or {})["newsqa"]
    cited = extra["citations"][0]
    assert answer.endswith("[1]") and answer.removesuffix("[1]").strip() in cited["text"]
    assert listed.startswith(f"- [1] {cited['title']} (") and extra["passages"]
    # the sources, the checked answer (a one-sentence reply comes whole), the list, the end
    assert len(chunks) >= 3 and chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.reliability
def test_gradio_client_gets_a_readable_error_for_a_bad_question(app_server: RunningApp) -> None:
    client = Client(app_server.url, verbose=False)
    with pytest.raises(Exception, match="empty"):
        client.predict(question="   ", api_name="/ask")
    with pytest.raises(Exception, match="too long"):
        client.predict(question="why " * 1000, api_name="/ask")


@pytest.mark.reliability
def test_only_the_ask_endpoint_is_public(app_server: RunningApp) -> None:
    info = Client(app_server.url, verbose=False).view_api(return_format="dict", print_info=False)
    assert list(info["named_endpoints"]) == ["/ask"]
    assert not info["unnamed_endpoints"]


@pytest.mark.reliability
def test_the_app_will_not_listen_beyond_localhost_without_a_login(tmp_path: Path) -> None:
    env = {**os.environ, "UI_HOST": "0.0.0.0", "INDEX_DIR": str(tmp_path / "index")}
    env.pop("UI_USERNAME", None)
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "UI_USERNAME and UI_PASSWORD" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "index").exists()  # refused before touching anything


@pytest.mark.reliability
def test_with_a_login_set_the_app_asks_for_it(tmp_path: Path) -> None:
    process, app = start_app(
        tmp_path, EMBEDDER="fake", UI_USERNAME="reader", UI_PASSWORD="correct horse"
    )
    try:
        with pytest.raises(Exception):  # noqa: B017 - gradio_client's error type varies
            Client(app.url, verbose=False).predict(question=QUESTION, api_name="/ask")
        client = Client(app.url, auth=("reader", "correct horse"), verbose=False)
        assert client.predict(question=QUESTION, api_name="/ask")["citations"]
        api = f"{app.url}v1"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=api, api_key="wrong", max_retries=0).models.list()
        asked = openai.OpenAI(base_url=api, api_key="correct horse", max_retries=0)
        reply = asked.chat.completions.create(
            model="newsqa", messages=[{"role": "user", "content": QUESTION}]
        )
        assert (reply.model_extra or {})["newsqa"]["citations"]
        assert "correct horse" not in app.log.read_text(errors="replace")
    finally:
        stop_app(process)
