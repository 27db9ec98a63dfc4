"""Sentence splitting and token-sized chunking (fast: a word-count tokenizer stands in)."""

from __future__ import annotations

from itertools import pairwise

from pythainlp.tokenize import word_tokenize

from bot.models.embeddings import FakeEmbedder
from ingest.chunking import chunk_text, split_sentences

count = FakeEmbedder().count_tokens


def _sentences(text: str, lang: str = "") -> list[str]:
    return [text[a:b].strip() for a, b in split_sentences(text, lang)]


def test_abbreviations_and_resolution_numbers_do_not_end_sentences() -> None:
    text = (
        "Assoc. Prof. Dr. Tran Dinh Thien spoke. The Government issued Resolution No. 7/NQ-CP "
        "on January 10. Mr. Tran Luu Quang chaired it!"
    )
    assert _sentences(text) == [
        "Assoc. Prof. Dr. Tran Dinh Thien spoke.",
        "The Government issued Resolution No. 7/NQ-CP on January 10.",
        "Mr. Tran Luu Quang chaired it!",
    ]


def test_german_ordinals_do_not_end_sentences() -> None:
    text = "Zum 70. Jahrestag der Befreiung. Die Stadt feiert."
    assert _sentences(text, "de") == ["Zum 70. Jahrestag der Befreiung.", "Die Stadt feiert."]


def test_sentences_cover_the_paragraph_without_gaps() -> None:
    text = "One. Two? Three… « Quatre » est ici. Fin"
    spans = split_sentences(text, "fr")
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in pairwise(spans))


def test_passages_are_exact_slices_within_the_size_limit() -> None:
    paragraphs = [
        " ".join(f"Sentence {p}.{i} has some words in it." for i in range(40)) for p in range(3)
    ]
    text = "\n\n".join(paragraphs)
    passages = chunk_text(text, count, size=120, min_size=80, overlap=20)
    assert len(passages) > 3
    for p in passages:
        assert text[p.start : p.end] == p.text
        assert p.n_tokens == count(p.text) <= 120
    covered = {i for p in passages for i in range(p.start, p.end)}
    words = {i for i, ch in enumerate(text) if not ch.isspace()}
    assert words <= covered, "every character of the text is in some passage"


def test_split_paragraphs_overlap_and_paragraph_breaks_do_not() -> None:
    para = " ".join(f"Fact number {i} is stated here." for i in range(60))
    text = f"{para}\n\nA second paragraph starts fresh."
    passages = chunk_text(text, count, size=100, min_size=10, overlap=30)
    first, second = passages[0], passages[1]
    assert second.start < first.end, "a paragraph split mid-way repeats some context"
    assert second.text.split(".")[0] in first.text
    last = passages[-1]
    assert last.text == "A second paragraph starts fresh."


def test_small_paragraphs_merge_until_the_minimum() -> None:
    text = "\n\n".join(f"Short paragraph {i}." for i in range(6))
    passages = chunk_text(text, count, size=200, min_size=100, overlap=10)
    assert len(passages) == 1 and passages[0].text == text


def test_thai_text_without_spaces_is_cut_at_word_boundaries() -> None:
    thai = "การประชุมเชิงปฏิบัติการนี้เปิดเวทีให้นักวิจัยได้ศึกษาข้อดีและศักยภาพต่างๆ" * 12
    passages = chunk_text(thai, count, size=60, min_size=30, overlap=0)
    assert len(passages) > 1
    boundaries = {0}
    for word in word_tokenize(thai, engine="newmm"):
        boundaries.add(max(boundaries) + len(word))
    for p in passages:
        assert p.n_tokens <= 60
        assert p.start in boundaries and p.end in boundaries, "no word is cut in half"
    assert "".join(p.text for p in passages) == thai
