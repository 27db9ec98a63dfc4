"""Bad questions sent to the running app through gradio_client: each gets a clear message or
an ordinary answer, none costs more than a normal question, and the app keeps serving."""

from __future__ import annotations

import time
from typing import Any

import pytest
from gradio_client import Client

from tests.conftest import RunningApp
from tests.soak.conftest import REPORT

pytestmark = pytest.mark.slow  # the app as a process

REFUSED = [  # (name, question, what the message says)
    ("empty", "", "empty"),
    ("white space", " \t\n\u3000 \u00a0 ", "empty"),
    ("control characters only", "\x00\x01\x1b[31m\x7f", "empty"),
    ("invisible characters only", "\u200b\u200e\u202e\ufeff", "empty"),
    ("50,000 characters", "Hai Phong " * 5000, "too long"),
    ("50,000 characters of one word", "x" * 50_000, "too long"),
]
ANSWERED = [  # (name, question, history)
    ("control characters inside", "Who is\x00 the Chairman\x1b[0m of Hai Phong?", None),
    ("bidi override inside", "Who is the \u202eChairman\u202c of Hai Phong?", None),
    ("mixed scripts", "Hai Phong ไฮฟอง Hải Phòng 海防 Хайфон: who leads the city?", None),
    ("emoji and symbols", "🚢⚓ Hai Phong port 2030?? ¿¡ «»", None),
    ("right-to-left script", "ما هي خطط هاي فونغ للميناء؟", None),
    ("a huge history", "And the port?", [{"role": "user", "content": "Hai Phong " * 20_000}] * 50),
    ("a malformed history", "And the port?", [{"role": 3}, "text", {"content": None}]),
]


@pytest.fixture(scope="module")
def client(app_server: RunningApp) -> Client:
    return Client(app_server.url, verbose=False)


def _timed(client: Client, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    try:
        result: Any = client.predict(api_name="/ask", **kwargs)
    except Exception as exc:
        result = exc
    return result, time.perf_counter() - started


def test_bad_questions_get_a_clear_message_at_bounded_cost(client: Client) -> None:
    _, normal_s = _timed(client, question="What did To Lam ask of Hai Phong?")
    tried: dict[str, float] = {}
    for name, question, says in REFUSED:
        result, seconds = _timed(client, question=question)
        assert isinstance(result, Exception) and says in str(result), (name, result)
        assert "Traceback" not in str(result)
        tried[name] = round(seconds, 3)
    for name, question, history in ANSWERED:
        result, seconds = _timed(client, question=question, history=history)
        assert isinstance(result, dict), (name, result)
        assert not result["error"] and result["passages"], (name, result)
        assert "\x00" not in result["question"] and "\u202e" not in result["question"]
        tried[name] = round(seconds, 3)
    huge_top_k, seconds = _timed(client, question="Hai Phong port", top_k=10**9)
    assert isinstance(huge_top_k, dict) and len(huge_top_k["passages"]) <= 50
    tried["top_k = 10^9"] = round(seconds, 3)
    # still serving; the times are reported (test_answer checks that no model sees them)
    again, _ = _timed(client, question="What did To Lam ask of Hai Phong?")
    assert isinstance(again, dict) and again["answer"]
    slowest = max(tried.values())
    REPORT["bad_input"] = {
        "tried": len(tried),
        "normal_question_s": round(normal_s, 3),
        "slowest_bad_s": slowest,
        "each_s": tried,
    }
