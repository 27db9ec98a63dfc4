"""Optional LLM judge of faithfulness: is each cited sentence supported by the passages it cites?

Any OpenAI-compatible chat endpoint; off unless `--judge-url` is given. The judge sees only
the sentence and the passages it cites, and must reply yes or no.
"""

from __future__ import annotations

import re
from typing import Any

from bot.answering.citations import claims_by_source
from bot.models.llm import OpenAIChat

PROMPT = """Passages:
{passages}

Statement: {sentence}

Is everything the statement says supported by the passages above (in any language)?
Reply with one word: yes or no."""


class Judge:
    def __init__(self, base_url: str, model: str, api_key: str | None, timeout: float) -> None:
        self.chat = OpenAIChat(base_url, model, api_key, timeout, f"the judge at {base_url}")

    def faithfulness(self, result: dict[str, Any]) -> float | None:
        """Share of (sentence, cited passages) pairs the judge finds supported; None when the
        answer cites nothing."""
        texts = {c["n"]: c["text"] for c in result.get("citations", [])}
        by_sentence: dict[str, list[int]] = {}
        for n, sentences in claims_by_source(result.get("answer", "")).items():
            for sentence in sentences:
                if n in texts:
                    by_sentence.setdefault(sentence, []).append(n)
        if not by_sentence:
            return None
        verdicts = []
        for sentence, numbers in by_sentence.items():
            passages = "\n\n".join(f"[{n}] {texts[n]}" for n in numbers)
            reply = self.chat.complete(
                [{"role": "user", "content": PROMPT.format(passages=passages, sentence=sentence)}],
                4,
            )
            verdicts.append(bool(re.match(r"\W*yes\b", reply.strip(), re.IGNORECASE)))
        return sum(verdicts) / len(verdicts)
