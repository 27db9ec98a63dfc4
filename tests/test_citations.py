"""Citation markers in streamed text, and refusals."""

from __future__ import annotations

import pytest

from bot.answering.citations import CitationFilter, cited_numbers
from bot.answering.refusal import is_refusal, may_become_refusal
from bot.text.sentences import answer_sentences


def _stream(pieces: list[str], n_valid: int) -> str:
    f = CitationFilter(n_valid)
    return "".join(f.feed(p) for p in pieces) + f.flush()


def test_markers_split_across_chunks_are_reassembled() -> None:
    assert _stream(["Ho Duc Phoc attended [", "1", "]. He spoke [2", "]."], 3) == (
        "Ho Duc Phoc attended [1]. He spoke [2]."
    )


def test_markers_pointing_at_no_passage_are_removed() -> None:
    assert _stream(["It grew [7]. It ", "rose [2, 9]", " and fell [0]."], 3) == (
        "It grew. It rose [2] and fell."
    )


def test_lists_are_normalised_and_deduplicated() -> None:
    assert _stream(["Both say so [1, 3; 1]."], 3) == "Both say so [1][3]."


def test_brackets_that_are_not_markers_pass_through() -> None:
    assert _stream(["The [sic] text [", "a] and [1]"], 2) == "The [sic] text [a] and [1]"


def test_an_unfinished_marker_at_the_end_is_dropped() -> None:
    assert _stream(["Done [1", "2"], 3) == "Done"


def test_cited_numbers_in_order_of_first_appearance() -> None:
    assert cited_numbers("A [2]. B [1][2]. C [3].") == [2, 1, 3]


def test_markers_written_after_the_full_stop_stay_with_their_sentence() -> None:
    answer = (
        "It ends in 2045. [1], [19] It began in 2020 [2]. Mr. Tung spoke. [3][4]\n- A list item [5]"
    )
    assert [answer[a:b].strip() for a, b in answer_sentences(answer)] == [
        "It ends in 2045. [1], [19]",
        "It began in 2020 [2].",
        "Mr. Tung spoke. [3][4]",
        "- A list item [5]",
    ]


@pytest.mark.parametrize(
    "reply",
    [
        "I don't know.",
        "i do not know",
        "Je ne sais pas.",
        "Ich weiß es nicht.",
        "ฉันไม่ทราบ",
        "Tôi không biết.",
        "**I don’t know.**",
    ],
)
def test_refusals_in_several_languages(reply: str) -> None:
    assert is_refusal(reply)


def test_answers_are_not_refusals_and_prefixes_are_held() -> None:
    assert not is_refusal("Nguyen Van Tung chairs the committee [1].")
    assert may_become_refusal("I do")
    assert may_become_refusal("Je ne")
    assert not may_become_refusal("Nguyen")
    assert not may_become_refusal("In 2025 the city")
