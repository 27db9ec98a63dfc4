"""Words of another language inside a text: "the line ferroviaire", "the Parteisekretär of Hai
Phong", a list item that is a whole German phrase in an English answer.

A word is foreign to language L when it belongs to one of the source languages S (the articles
the answer rests on) and not to L: by wordfreq's frequency lists, it is common in S (Zipf
frequency) and rare in L, by a clear margin; or, unknown to L's list, it carries letters L does
not write (ä, ß in an English answer) or is a long compound of S; or it is written in a script L
does not use (Thai or Chinese in an English answer); or a whole clause is in S by py3langid
("reliant le port maritime de Hai Phong aux zones", whose words English mostly shares).
Names pass: a word common in Vietnamese (the corpus's people and places: "Phong", "Lâm",
"Nguyễn"), a capitalised word past the first when S capitalises only names (every language but
German) unless it is a common word of S ("Assemblée nationale"), or a word the question itself
uses. Measured on the shipped English articles against French and German: none of their 890
distinct words is flagged; of the German article's 323 distinct words 248 are, of the French
article's 916, 627 (the others are shared with English, "port", "zone", "transformation", or
taken for names).

`foreign_terms(text, "en", {"fr"})` -> [Term("ferroviaire", start, end, "fr")], adjacent words
merged into one term ("chemin de fer"), the small words of S between them included.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache

from bot.text.language import which_of

# the languages wordfreq's lists cover among the bot's (bot.text.language.NAMES); Thai has none
LISTED = {"en", "fr", "de", "vi", "es", "it", "pt", "nl", "pl", "ru", "zh", "ja", "ko", "id"}
RARE = 3.0  # a word less frequent than this in L (Zipf: 3 is once per million words) ...
MARGIN = 2.0  # ... and this much more frequent in S is S's word
GLUE = 5.5  # a word this frequent in S ("de", "der") joins two foreign words into one term
NEAR = 4.0  # a word this frequent in S, clearly more than in L, may join a term
NAME = 4.0  # a word this frequent in Vietnamese is taken for a name
COMPOUND = 10  # letters of a capitalised word unknown to L and to Vietnamese: a German compound
# letters a language writes that English, for one, does not
_LETTERS = {
    "de": "äöüß",
    "fr": "éèêëàâçîïôûùœ",
    "es": "ñáéíóú",
    "it": "àèéìòù",
    "pt": "ãõáéíóúâêôç",
    "nl": "ëïé",
    "pl": "ąćęłńóśźż",
}
CLAUSE = 4  # words of a clause that py3langid may find written in S
SURE = 0.95  # py3langid's confidence, between L and S, that a clause is in S
CAPITALISED = {"de", "lb"}  # languages that capitalise every noun
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_CLAUSE = re.compile(r"[^,;:()\[\]\n–—]+")  # a clause, between punctuation and markers
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")
_THAI = re.compile(r"[\u0e00-\u0e7f]+(?:\s+[\u0e00-\u0e7f]+)*")


@dataclass(frozen=True)
class Term:
    """A run of foreign words in a text: its words, offsets and the language they are of."""

    text: str
    start: int
    end: int
    lang: str


@cache
def _zipf(word: str, lang: str) -> float:
    from wordfreq import zipf_frequency  # its lists load on first use, not at import

    return float(zipf_frequency(word, lang)) if lang in LISTED else 0.0


def is_common(word: str, lang: str, at_least: float = 3.0) -> bool:
    """Whether `word` is at least this common in `lang` (Zipf frequency: 3 is once in a
    million words); False in a language wordfreq does not list."""
    return _zipf(word.lower(), lang) >= at_least


def _foreign(word: str, lang: str, source: str) -> bool:
    """Whether `word`, in a text of `lang`, is a word of `source` instead."""
    if len(word) < 3 or lang not in LISTED or source not in LISTED or source == lang:
        return False
    mine, theirs = _zipf(word, lang), _zipf(word, source)
    if _zipf(word, "vi") >= NAME and "vi" not in (lang, source):
        return False
    if theirs - mine >= MARGIN and mine < RARE:
        return True
    if mine > 0:
        return False
    own = set(_LETTERS.get(lang, ""))
    alien = set(_LETTERS.get(source, "")) - own
    lowered = word.lower()
    compound = source in CAPITALISED and word[:1].isupper() and len(word) >= COMPOUND
    return any(ch in alien for ch in lowered) or (compound and _zipf(word, "vi") == 0)


def _name(word: re.Match[str], i: int, lang: str, source: str) -> bool:
    """A capitalised word past a text's first, in a language that capitalises only names (not
    German, which capitalises every noun): "Tô Lâm" in an answer from a Vietnamese article; but
    not a common word of S that a name is made of ("Assemblée nationale")."""
    text = word.group()
    if source in CAPITALISED or i == 0 or not text[:1].isupper():
        return False
    common = source != "vi" and _zipf(text, source) >= NEAR and _zipf(text, lang) < 2.5
    return not common


def _near(word: str, lang: str, source: str) -> bool:
    """Whether `word` may belong to a run of `source`'s words, though not foreign alone: a small
    word of S ("de", "der") or one clearly more frequent in S ("fer" in "chemin de fer")."""
    mine, theirs = _zipf(word, lang), _zipf(word, source)
    return (theirs >= GLUE and theirs > mine) or (theirs >= NEAR and theirs - mine >= 1.0)


def _clauses(
    text: str, words: list[re.Match[str]], kinds: list[int], lang: str, source: str
) -> list[Term]:
    """Clauses of S inside the text ("reliant le port maritime de Hai Phong aux zones", whose
    words English shares): at least CLAUSE words, one of them a lower-case word of S, and
    written in S rather than L by py3langid with at least SURE confidence."""
    found = []
    for clause in _CLAUSE.finditer(text):
        inside = [
            k
            for k, w in enumerate(words)
            if clause.start() <= w.start() and w.end() <= clause.end()
        ]
        if len(inside) < CLAUSE or not any(kinds[k] and words[k].group().islower() for k in inside):
            continue
        said, sure = which_of(clause.group(), lang, source)
        if said == source and sure >= SURE:
            start, end = words[inside[0]].start(), words[inside[-1]].end()
            found.append(Term(text[start:end], start, end, source))
    return found


def foreign_terms(
    text: str, lang: str, sources: Collection[str], keep: Collection[str] = ()
) -> list[Term]:
    """The runs of words in `text` (written in `lang`) that are words of one of `sources`
    rather than of `lang`; words in `keep` (those of the question, case-insensitive) are never
    foreign."""
    kept = {w.lower() for w in keep}
    others = [s for s in dict.fromkeys(sources) if s and s != lang]
    terms: list[Term] = []
    if lang != "th":  # Thai words in a text of a language written otherwise
        terms += [Term(m.group(), m.start(), m.end(), "th") for m in _THAI.finditer(text)]
    if lang not in ("zh", "ja", "ko"):  # and Chinese characters ("giải pháp革新的")
        terms += [Term(m.group(), m.start(), m.end(), "zh") for m in _CJK.finditer(text)]
    words = list(_WORD.finditer(text))
    for source in others:
        if source not in LISTED or lang not in LISTED:
            continue
        kinds = [  # 2: foreign; 1: foreign beside a foreign word; 0: not
            0
            if w.group().lower() in kept or _name(w, i, lang, source)
            else 2
            if _foreign(w.group(), lang, source)
            else int(_near(w.group(), lang, source))
            for i, w in enumerate(words)
        ]
        i = 0
        while i < len(words):
            j = i  # a run of kind-1 or -2 words with nothing but spaces between them
            while (
                j + 1 < len(words)
                and kinds[j]
                and kinds[j + 1]
                and not text[words[j].end() : words[j + 1].start()].strip()
            ):
                j += 1
            if kinds[i] and 2 in kinds[i : j + 1]:
                start, end = words[i].start(), words[j].end()
                terms.append(Term(text[start:end], start, end, source))
            i = j + 1
        terms += _clauses(text, words, kinds, lang, source)
    terms.sort(key=lambda t: (t.start, -t.end))
    merged: list[Term] = []
    for term in terms:  # a clause takes in the terms inside it; two sources' word is one term
        if merged and term.start < merged[-1].end:
            continue
        merged.append(term)
    return merged
