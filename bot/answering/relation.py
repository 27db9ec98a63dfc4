"""Whether an evidence sentence states a claim, not only shares its names and numbers: the
citation check (bot.answering.support) matches "Nguyen Van Tung chaired the conference" to the
sentence that lists him among those who attended; the LLM, asked yes or no, reads the relation.
The answer is read from the probabilities of the model's first token (one token written)."""

from __future__ import annotations

from bot.answering.prompts import render
from bot.models.llm import ChatModel, Message


def relation_messages(question: str, evidence: str, claim: str) -> list[Message]:
    content = render("relation", question=question, evidence=evidence, claim=claim)
    return [{"role": "user", "content": content}]


def states(llm: ChatModel, question: str, evidence: str, claim: str) -> float:
    """How likely `evidence` states `claim`, an answer to `question`, by the LLM (0-1)."""
    return llm.yes_probability(relation_messages(question, evidence, claim))
