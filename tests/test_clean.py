"""Boilerplate cleaning on the shipped articles: what is cut, per article, and that no body
sentence is."""

from __future__ import annotations

import re

import pytest

from ingest.clean import clean_article
from tests.conftest import CORPUS, IDS

NAV = "trailing navigation"
SOURCE = "source line (kept as metadata)"

# Every line cleaning removes from each shipped article, in the order it reports them
# (lines shortened to 40 characters). Anything else cut would be a body line lost.
EXPECTED_CUTS: dict[str, list[tuple[str, str]]] = {
    "000_dc2988f8c62b768a": [
        ("Kommentar (0)", NAV),
        ("![]() |", "image stub"),
        ("Quelle: https://baophapluat.vn/hop-nhat-", SOURCE),
    ],
    "001_5e3177cbc2a4a8ec": [
        ("การแสดงความคิดเห็น (0)", NAV),
        ("![]() |", "image stub"),
        ("ที่มา: https://baophapluat.vn/hop-nhat-h", SOURCE),
    ],
    "002_1ca994a0bc34cf02": [
        *[
            (line, NAV)
            for line in [
                "Comment (0)",
                "No data",
                "No data",
                "Same tag",
                "Same category",
                "36 military and police units practice fo",
                "Vietnam not only..., but also...!",
                "Victory - Bond in Vietnam: When top musi",
                "Fighter planes and 13,000 soldiers train",
                "Same author",
                "Heritage",
                "Figure",
                "Business",
                "No videos available",
                "News",
                "Political System",
                "Local",
                "Product",
            ]
        ],
        ("Vietnam.vn - Nền tảng quảng bá Việt Nam", "site banner (kept as metadata)"),
        ("Việt NamViệt Nam11/01/2025", "dateline (kept as metadata)"),
        ("hai-phong.jpg", "image stub"),
        ("Source: https://baohaiduong.vn/xay-dung-", SOURCE),
    ],
    "003_b526725865409856": [
        *[
            (line, NAV)
            for line in [
                "Comment (0)",
                "No data",
                "No data",
                "Même sujet",
                "Même catégorie",
                "Diffuser les valeurs culturelles nationa",
                "Couleur du lotus de Hue",
                "Hoa Minzy révèle des messages avec Xuan ",
                "Phu Quoc – paradis tropical",
                "Même auteur",
                "Patrimoine",
                "Chiffre",
                "Entreprise",
                "No videos available",
                "Nouvelles",
                "Ministère - Filiale",
                "Locale",
                "Produit",
            ]
        ],
        ("Việt NamViệt Nam14/11/2024", "dateline (kept as metadata)"),
        # The second of two identical photo captions; the first stays.
        ("Le secrétaire général To Lam prend la pa", "repeated caption"),
        ("Source : https://haiphong.gov.vn/tin-tuc", SOURCE),
    ],
    "004_7234e428cdcd5127": [
        *[("The Delegates", "repeated caption")] * 4,
        ("Hai Phong Online Newspaper - baohaiphong", "site banner (kept as metadata)"),
    ],
}


_SOURCE = re.compile(r"^(Quelle|Source|ที่มา)\s?:")


def _text(doc_id: str) -> str:
    return (CORPUS / f"{doc_id}.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("doc_id", IDS)
def test_cuts_exactly_the_boilerplate_of_each_shipped_article(doc_id: str) -> None:
    cleaned = clean_article(_text(doc_id))
    assert [(line[:40], reason) for line, reason in cleaned.cut] == EXPECTED_CUTS[doc_id]


@pytest.mark.parametrize("doc_id", IDS)
def test_no_sentence_of_the_body_is_cut(doc_id: str) -> None:
    original = _text(doc_id)
    cleaned = clean_article(original).text
    # A body line: prose of at least 8 words, or a Thai line (no spaces between words) of
    # 100+ characters. Captions cut as trailing pipes keep their words.
    # The body ends where the source line is (or, lacking one, at the end).
    lines = original.splitlines()
    end = next((i for i, line in enumerate(lines) if _SOURCE.match(line)), len(lines))
    body = [
        line.strip().removesuffix(" |")
        for line in lines[:end]
        if len(line.split()) >= 8 or (re.search("[\u0e00-\u0e7f]", line) and len(line) >= 100)
    ]
    assert body, "the article has body lines"
    banners = {line for line, reason in EXPECTED_CUTS[doc_id] if reason.startswith("site banner")}
    missing = [line[:60] for line in body if line not in cleaned and line[:40] not in banners]
    assert missing == []


def test_bylines_and_titles_survive() -> None:
    assert "DO OANH - DUY THINH" in clean_article(_text("004_7234e428cdcd5127")).text
    text = clean_article(_text("002_1ca994a0bc34cf02")).text
    assert text.startswith("Building Hai Phong City into an international connection center")
    assert text.rstrip().endswith("TB")


def test_metadata_lines_feed_metadata() -> None:
    cleaned = clean_article(_text("002_1ca994a0bc34cf02"))
    assert cleaned.source_url == (
        "https://baohaiduong.vn/xay-dung-tp-hai-phong-thanh-trung-tam-ket-noi-quoc-te-402749.html"
    )
    assert cleaned.date == "2025-01-11"  # day/month/year dateline
    assert cleaned.publisher == "Vietnam.vn"


def test_navigation_marker_followed_by_prose_is_not_a_tail() -> None:
    text = "First paragraph of the story.\nNo data\n" + "A long body paragraph " * 20 + "."
    cleaned = clean_article(text)
    assert cleaned.cut == [("No data", "navigation")]
    assert "A long body paragraph" in cleaned.text


def test_repeated_sentence_keeps_its_first_occurrence() -> None:
    text = "The mayor spoke.\nBody text that matters a lot here.\nThe mayor spoke.\n"
    cleaned = clean_article(text)
    assert cleaned.paragraphs == ["The mayor spoke.", "Body text that matters a lot here."]
