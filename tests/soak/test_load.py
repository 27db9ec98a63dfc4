"""Load: 20 chat sessions at once against the running app (real embedder and Chroma, fake LLM),
through gradio_client, each a two-turn conversation of its own."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from gradio_client import Client

from eval.metrics import percentile
from tests.conftest import RunningApp
from tests.soak.conftest import REPORT

pytestmark = pytest.mark.slow  # the app as a process

SESSIONS = 20
REQUEST_TIMEOUT_S = 180  # one answer, queue included
# Twenty different questions about the shipped articles, in their four languages and more.
QUESTIONS = [
    "Who is the Chairman of the People's Committee of Hai Phong?",
    "What did the General Secretary ask of Hai Phong?",
    "How fast did Hai Phong's economy grow?",
    "Which port area is being developed in Lach Huyen?",
    "What happened at the conference of July 15?",
    "Quelles sont les priorités de Hai Phong pour 2030 ?",
    "Qui a présidé la réunion à Hai Phong ?",
    "Welche Ziele hat Hai Phong für 2045?",
    "Wer hat die Konferenz in Hai Phong geleitet?",
    "ไฮฟองมีเป้าหมายอะไรในปี 2030",
    "Thành phố Hải Phòng phát triển cảng biển như thế nào?",
    "What is the free trade zone plan of Hai Phong?",
    "How many industrial parks does Hai Phong have?",
    "What does Resolution 45 say about Hai Phong?",
    "Which foreign investors came to Hai Phong?",
    "What is Hai Phong's budget revenue?",
    "Who is Tran Luu Quang?",
    "What did the Politburo decide about Hai Phong?",
    "How does Hai Phong plan to become a green port city?",
    "What infrastructure projects connect Hai Phong to Hanoi?",
]
FOLLOW_UP = 7  # session i's second question is QUESTIONS[(i + 7) % 20], asked with its history


def _ask(
    client: Client, question: str, history: list[dict[str, str]]
) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    job = client.submit(question=question, history=history, api_name="/ask")
    result = job.result(timeout=REQUEST_TIMEOUT_S)
    return result, time.perf_counter() - started


def _fingerprint(result: dict[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    return result["question"], result["answer"], tuple(p["id"] for p in result["passages"])


def test_twenty_concurrent_sessions_get_their_own_answers(app_server: RunningApp) -> None:
    # What each question gets when it is alone: the reference for crossed conversations.
    alone = Client(app_server.url, verbose=False)
    expected = {q: _fingerprint(_ask(alone, q, [])[0]) for q in QUESTIONS}
    assert len({e[1] for e in expected.values()}) >= 10, "too few distinct answers to tell apart"

    def session(i: int) -> list[tuple[str, dict[str, Any], float]]:
        client = Client(app_server.url, verbose=False)
        first = QUESTIONS[i]
        result, seconds = _ask(client, first, [])
        turns = [(first, result, seconds)]
        history = [
            {"role": "user", "content": first},
            {"role": "assistant", "content": result["answer"]},
        ]
        second = QUESTIONS[(i + FOLLOW_UP) % SESSIONS]
        result, seconds = _ask(client, second, history)
        turns.append((second, result, seconds))
        return turns

    started = time.perf_counter()
    with ThreadPoolExecutor(SESSIONS) as pool:
        sessions = list(pool.map(session, range(SESSIONS), timeout=2 * REQUEST_TIMEOUT_S))
    wall = time.perf_counter() - started

    latencies, crossed, errors = [], 0, 0
    for turns in sessions:
        for question, result, seconds in turns:
            latencies.append(seconds)
            errors += bool(result["error"])
            # the fake LLM returns a follow-up unchanged, so both turns must match the reference
            crossed += _fingerprint(result) != expected[question]
    REPORT["load"] = {
        "sessions": SESSIONS,
        "requests": len(latencies),
        "errors": errors,
        "crossed": crossed,
        "p50_s": round(percentile(latencies, 0.5) or 0.0, 2),
        "p95_s": round(percentile(latencies, 0.95) or 0.0, 2),
        "max_s": round(max(latencies), 2),
        "wall_s": round(wall, 1),
    }
    assert errors == 0 and crossed == 0, REPORT["load"]
