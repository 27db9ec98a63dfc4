"""Thai, which writes no spaces between words: detection and segmentation (pythainlp, whose
models ship inside the package)."""

from __future__ import annotations

import re

THAI_CHAR = re.compile(r"[\u0e00-\u0e7f]")
THAI_RUN = re.compile(r"[\u0e00-\u0e7f]+")
_LETTER = re.compile(r"[^\W\d_]")


def is_thai(text: str) -> bool:
    """Whether most of the letters of `text` are Thai (more than 30%)."""
    letters = len(_LETTER.findall(text))
    return letters > 0 and len(THAI_CHAR.findall(text)) / letters > 0.3


def has_thai(text: str) -> bool:
    return THAI_CHAR.search(text) is not None


def thai_words(text: str, keep_whitespace: bool = False) -> list[str]:
    """Words of a Thai text (pythainlp's dictionary tokenizer, newmm)."""
    from pythainlp.tokenize import word_tokenize

    return [str(w) for w in word_tokenize(text, engine="newmm", keep_whitespace=keep_whitespace)]


def thai_sentences(text: str) -> list[str]:
    """Sentences of a Thai text (pythainlp's CRF sentence model)."""
    from pythainlp.tokenize import sent_tokenize

    return [str(s) for s in sent_tokenize(text, engine="crfcut")]
