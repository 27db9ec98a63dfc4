"""Language identification (py3langid; its model ships inside the package) and language names."""

from __future__ import annotations

from functools import cache
from typing import Any

NAMES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "th": "Thai",
    "vi": "Vietnamese",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "ru": "Russian",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "id": "Indonesian",
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


@cache
def _between(languages: tuple[str, ...]) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier


def which_of(text: str, a: str, b: str) -> tuple[str, float]:
    """Which of two languages `text` is written in, and how sure that is (0.5-1)."""
    lang, prob = _between(tuple(sorted((a, b)))).classify(text)
    return str(lang), float(prob)


def detect_question_language(question: str, fallback: str = "en") -> str:
    """ISO code of a (short) question; `fallback` when the guess is unsure."""
    lang, prob = _identifier(True).classify(question)
    return str(lang) if prob >= 0.5 else fallback


def language_name(code: str, unknown: str = "") -> str:
    """The English name of an ISO 639-1 code; for a code without one, `unknown`, or else the
    code itself ("unknown language" when there is none)."""
    return NAMES.get(code) or unknown or code or "unknown language"
