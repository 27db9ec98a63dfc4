"""Refusals: what the model is told to say when its sources lack the answer, how a refusal is
recognised while it streams, and what the bot says instead, in the question's language."""

from __future__ import annotations

REFUSAL_MARKER = "I don't know."

# How models say they cannot answer, in the languages the bot names (lower case, start of reply).
REFUSAL_PHRASES = (
    "i don't know",
    "i do not know",
    "i dont know",
    "je ne sais pas",
    "ich weiß es nicht",
    "ich weiß nicht",
    "ich weiss es nicht",
    "ฉันไม่ทราบ",
    "ไม่ทราบ",
    "tôi không biết",
    "no lo sé",
    "no sé",
    "non lo so",
    "não sei",
)

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


def dont_know(code: str) -> str:
    return DONT_KNOW.get(code, DONT_KNOW["en"])


def _normal(text: str) -> str:
    return text.strip().lower().replace("’", "'").lstrip("*_\"' ")


def is_refusal(text: str) -> bool:
    return _normal(text).startswith(REFUSAL_PHRASES)


def may_become_refusal(text: str) -> bool:
    """True while `text` could still be the start of a refusal: hold it back."""
    normal = _normal(text)
    return any(r.startswith(normal) or normal.startswith(r) for r in REFUSAL_PHRASES)


# What the bot says instead of a reply the citation check supports nowhere, and how it heads
# the passages that come closest (their markers follow).
NOT_SUPPORTED = {
    "en": ("The articles do not seem to say this.", "The closest passages:"),
    "fr": ("Les articles ne semblent pas le dire.", "Les passages les plus proches :"),
    "de": ("Die Artikel scheinen das nicht zu sagen.", "Die nächstliegenden Passagen:"),
    "th": ("บทความดูเหมือนจะไม่ได้กล่าวถึงเรื่องนี้", "ข้อความที่ใกล้เคียงที่สุด:"),
    "vi": ("Các bài báo dường như không nói điều này.", "Những đoạn gần nhất:"),
    "es": ("Los artículos no parecen decirlo.", "Los pasajes más cercanos:"),
    "it": ("Gli articoli non sembrano dirlo.", "I passaggi più vicini:"),
    "pt": ("Os artigos não parecem dizer isso.", "As passagens mais próximas:"),
}


def not_supported(code: str, closest: list[int]) -> str:
    """What the reader reads instead of an unsupported reply, citing the closest passages."""
    sentence, heading = NOT_SUPPORTED.get(code, NOT_SUPPORTED["en"])
    if not closest:
        return sentence
    return f"{sentence} {heading} {' '.join(f'[{n}]' for n in closest)}"
