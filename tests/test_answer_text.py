"""The answer as the chat shows it (webui/answer_text.py): linked markers, flagged sentences."""

from __future__ import annotations

from bot.answering.records import Claim, Evidence
from bot.text.sentences import answer_sentences
from webui.answer_text import flagged, linked, unlinked

ANSWER = "Hai Phong grows [1]. It has 12 ports [2].\n- a bridge [1]\n- a tunnel [2]"


def _claims(unsupported: set[int]) -> list[Claim]:
    """The answer's sentences; those in `unsupported` were checked and found no support."""
    claims = []
    for i, (a, b) in enumerate(answer_sentences(ANSWER)):
        claim = Claim(a, b, ANSWER[a:b], evidence=[Evidence(1, 0, 5, 0.1)])
        claim.supported = i not in unsupported
        claims.append(claim)
    return claims


def test_sentences_without_support_are_marked_and_the_history_keeps_the_plain_text() -> None:
    shown = flagged(ANSWER, _claims({1, 3}))
    assert shown.count('class="nqa-unsupported"') == 2
    assert (
        '"nqa-unsupported" title="The passages this sentence cites do not clearly say this' in shown
    )
    assert ">It has 12 ports [2].<small" in shown  # the sentence, not the space before it
    assert "\n- <span" in shown  # a list item keeps its bullet outside the mark
    assert unlinked(linked(shown)) == ANSWER
    assert "[[2]](#nqa-src-2).<small" in linked(shown)  # its marker still links its card


def test_nothing_is_marked_when_every_sentence_is_supported_or_was_not_checked() -> None:
    assert flagged(ANSWER, _claims(set())) == ANSWER
    unchecked = [Claim(a, b, ANSWER[a:b]) for a, b in answer_sentences(ANSWER)]  # no evidence
    assert flagged(ANSWER, unchecked) == ANSWER
