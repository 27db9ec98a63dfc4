"""The relation check's parts: the model's yes/no read from its first token's probabilities
(through the OpenAI client, against a fake OpenAI-compatible server), and the measurement that
judged it (eval.relation)."""

from __future__ import annotations

import pytest

from bot.answering.relation import relation_messages, states
from bot.models.fake_llm import FakeChat
from bot.models.llm import OpenAIChat
from eval.relation import report
from tests.fake_openai import FakeOpenAI


def _chat(server: FakeOpenAI) -> OpenAIChat:
    return OpenAIChat(server.base_url, "fake", None, 10, "the fake server")


def test_yes_is_read_from_the_first_tokens_probabilities() -> None:
    with FakeOpenAI() as server:
        server.replies.append("Yes")
        server.top_tokens = [("Yes", 0.6), ("No", 0.2), (" yes", 0.1), ("Let", 0.05)]
        p = _chat(server).yes_probability(
            relation_messages("Who chaired?", "A chaired.", "A chaired.")
        )
        body = server.requests[-1]["body"]
    assert p == pytest.approx(0.7 / 0.9)
    assert body["max_tokens"] == 1 and body["logprobs"] and body["top_logprobs"] >= 5


def test_an_endpoint_without_log_probabilities_gives_its_word() -> None:
    with FakeOpenAI() as server:
        server.replies.extend(["No, it does not.", "Yes.", "Maybe"])
        chat = _chat(server)
        said = [chat.yes_probability([{"role": "user", "content": "?"}]) for _ in range(3)]
    assert said == [0.0, 1.0, 0.5]


def test_the_relation_prompt_holds_the_question_the_claim_and_its_evidence() -> None:
    llm = FakeChat(["0.25"])
    assert states(llm, "Who chaired?", "B chaired; A attended.", "A chaired.") == 0.25
    prompt = llm.calls[0][0]["content"]
    assert (
        "Who chaired?" in prompt and "B chaired; A attended." in prompt and "A chaired." in prompt
    )


def test_the_measurement_counts_answers_rejected_at_each_threshold() -> None:
    rows = [
        {"id": "a", "kind": "right", "sentences": [{"p": 0.95, "s": 1.0}, {"p": 0.3, "s": 1.0}]},
        {"id": "b", "kind": "right", "sentences": [{"p": 0.55, "s": 1.0}]},
        {"id": "c", "kind": "wrong", "sentences": [{"p": 0.65, "s": 1.0}]},
        {"id": "d", "kind": "partial", "sentences": [{"p": 0.1, "s": 1.0}]},
    ]
    lines = report(rows).splitlines()
    assert lines[0].startswith("answers judged: 3 (2 right, 1 wrong; 1 partly right left out)")
    assert "0.5 | 0 of 1 | 0 of 2" in lines
    assert "0.6 | 0 of 1 | 1 of 2" in lines  # b: its one sentence below 0.6
    assert "0.7 | 1 of 1 | 1 of 2" in lines  # a keeps a sentence at 0.95
