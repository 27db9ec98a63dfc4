"""How far the embedded LLM has read a prompt (bot.models.llm_server.PromptProgress), and how
the chat shows it (webui.progress.Phase); the real server is in tests/test_e2e_llm.py."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from bot.models.llm_server import PromptProgress
from webui.progress import Phase


class _Llama:
    """Evaluates a prompt token by token as llama.cpp does batch by batch, then writes."""

    def __init__(self) -> None:
        self.n_tokens = 7  # left from the completion before
        self.seen: list[dict[str, int]] = []
        self.progress: PromptProgress | None = None

    def generate(self, tokens: list[int], **_: Any) -> Generator[int, None, None]:
        self.n_tokens = 2  # a reused prefix of two tokens
        while self.n_tokens < len(tokens):
            self.n_tokens += 1
            assert self.progress is not None
            self.seen.append(self.progress.report())
        yield 42


def test_the_progress_follows_the_prompt_being_read_and_ends_with_it() -> None:
    llama = _Llama()
    progress = llama.progress = PromptProgress(llama)
    assert progress.report()["prompt"] == 0  # nothing under way
    assert list(llama.generate(list(range(5)))) == [42]
    assert llama.seen == [
        {"prompt": 5, "read": 3},
        {"prompt": 5, "read": 4},
        {"prompt": 5, "read": 5},
    ]
    assert progress.report()["prompt"] == 0
    writing = llama.generate(list(range(4)))
    next(writing)
    assert progress.report() == {"prompt": 4, "read": 4}
    writing.close()  # a client that stopped
    assert progress.report()["prompt"] == 0


def test_an_earlier_completion_closed_late_does_not_end_the_report_of_the_next() -> None:
    llama = _Llama()
    progress = llama.progress = PromptProgress(llama)
    earlier = llama.generate(list(range(4)))
    next(earlier)  # written, then left for the garbage collector
    later = llama.generate(list(range(6)))
    next(later)
    earlier.close()  # collected while the later one runs
    assert progress.report() == {"prompt": 6, "read": 6}
    later.close()
    assert progress.report()["prompt"] == 0


def test_the_phase_shows_how_much_of_the_prompt_is_read() -> None:
    phase = Phase("Reading 3 passages…", started=0.0)
    phase.read = (300, 1200)
    assert phase.shown().startswith("_Reading 3 passages… 25% read · ")
    phase.read = None
    assert "% read" not in phase.shown()
