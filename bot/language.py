"""Language identification (py3langid; its model ships inside the package) and the few words
the bot says itself, per language."""

from __future__ import annotations

from functools import cache
from typing import Any

NAMES = {
    "en": "English", "fr": "French", "de": "German", "th": "Thai", "vi": "Vietnamese",
    "es": "Spanish", "it": "Italian", "pt": "Portuguese", "nl": "Dutch", "pl": "Polish",
    "ru": "Russian", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "id": "Indonesian",
}  # fmt: skip

# What the bot says when the passages do not hold the answer.
DONT_KNOW = {
    "en": "I don't know: the indexed articles do not say.",
    "fr": "Je ne sais pas : les articles indexés ne le disent pas.",
    "de": "Ich weiß es nicht: Die indexierten Artikel sagen dazu nichts.",
    "th": "ฉันไม่ทราบ: บทความที่จัดทำดัชนีไว้ไม่ได้กล่าวถึงเรื่องนี้",
    "vi": "Tôi không biết: các bài báo đã được lập chỉ mục không đề cập đến điều này.",
    "es": "No lo sé: los artículos indexados no lo dicen.",
    "it": "Non lo so: gli articoli indicizzati non lo dicono.",
    "pt": "Não sei: os artigos indexados não dizem.",
}


@cache
def _identifier(restricted: bool) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if restricted:  # short questions: only languages the bot can name
        identifier.set_languages(sorted(NAMES))
    return identifier


def detect_language(text: str) -> str:
    """ISO 639-1 code of an article's text."""
    lang, _ = _identifier(False).classify(text[:20000])
    return str(lang)


def detect_question_language(question: str, fallback: str = "en") -> str:
    """ISO code of a (short) question; `fallback` when the guess is unsure."""
    lang, prob = _identifier(True).classify(question)
    return str(lang) if prob >= 0.5 else fallback


def language_name(code: str) -> str:
    return NAMES.get(code, "the language of the question")


def dont_know(code: str) -> str:
    return DONT_KNOW.get(code, DONT_KNOW["en"])
