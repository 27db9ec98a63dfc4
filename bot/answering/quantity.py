"""What kind of quantity a question asks for, and whether a sentence states one of that kind: a
figure given for the wrong quantity (megawatts as a budget, tonnes as a length) passes the
citation check, which matches the figure and not what it measures.

A question asks for a kind when it names the kind's measure ("How much will the railway
cost?", "Quel est le budget…", "Wie lang ist…", "ngân sách", "งบประมาณ"); the evidence an answer
rests on must then state a figure with one of that kind's units ("8.4 billion USD", "1,000 MW").
Only kinds whose units are unambiguous are asked about: an amount of money, a length, electric
power, a weight, an area, a share. Counts ("how many visitors") and dates are not: any number
or date states them, so a kind check cannot tell a right one from a wrong one.

kinds_asked("What budget was set for the offshore wind projects?")   # {"money"}
states_kind("… 1 000 MW d'énergie éolienne offshore …", {"money"})    # False
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from bot.index.lexical import fold


@dataclass(frozen=True)
class Kind:
    """A kind of quantity: the words of a question that ask for it, and the units that state
    it after (or before) a figure. Both are regular expressions over folded text
    (bot.index.lexical.fold: lower case, no accents; they are folded too, so they are written
    as the languages spell them)."""

    name: str
    asked: tuple[str, ...]
    units: tuple[str, ...]  # after the figure: "1,000 MW"
    before: tuple[str, ...] = ()  # or before it: "$2 billion", "USD 5 million"


# `asked`: one alternation per language (en, fr, de, vi, th); `units`: Latin, then Thai.
KINDS = (
    Kind(
        "money",
        asked=(
            r"costs?|costing|budget\w*|prices?|invest(?:ment|ments|ed)?|funding|funds?"
            r"|spen[dt]\w*|how much money|in (?:us )?dollars|usd|vnd|euros?",
            r"coûts?|coût\w+|prix|financement\w*|montant|combien d'argent",
            r"\w*kosten|kostet\w*|\w*haushalt\w*|preis\w*|investition\w*|investiert\w*"
            r"|finanzierung\w*|betrag\w*",
            r"chi phí|ngân sách|kinh phí|vốn đầu tư|tổng vốn|bao nhiêu tiền|tỷ đồng",
            "งบประมาณ|ค่าใช้จ่าย|ต้นทุน|เงินลงทุน|กี่บาท|ดอลลาร์",
        ),
        units=(
            r"[$€£¥₫฿]|us\$|usd|vnd|eur|dollars?|euros?|đồng|dong|baht|yuan|yen",
            "บาท|ดอลลาร์|ด่ง",
        ),
        before=(r"[$€£¥₫฿]|us\$|usd|vnd|eur",),
    ),
    Kind(
        "length",
        asked=(
            r"how long is|length|kilomet\w*|km",
            r"longueur|long de",
            r"wie lang(?!e)|\w+länge|(?:die|der) länge|kilometer\w*",
            r"chiều dài|dài bao nhiêu",
            "ความยาว|ยาวกี่|กิโลเมตร",
        ),
        units=(r"km|kilomet\w*|kilomètres?|metres?|meters?|mét|miles?|m", "กิโลเมตร|กม|เมตร"),
    ),
    Kind(
        "power",
        asked=(
            r"megawatt\w*|gigawatt\w*|[mgk]w|power capacity|generating capacity",
            r"puissance",
            r"leistung\w*",
            r"công suất",
            "กำลังการผลิต|เมกะวัตต์",
        ),
        units=(
            r"[mgkt]wh?p?|megawatt\w*|mégawatts?|gigawatt\w*|kilowatt\w*",
            "เมกะวัตต์|กิกะวัตต์",
        ),
    ),
    Kind(
        "weight",
        asked=(
            r"tonnes?|tons?|how heavy|weigh\w*",
            r"poids",
            r"tonnen|gewicht\w*",
            r"bao nhiêu tấn",
            "กี่ตัน",
        ),
        units=(r"tonnes?|tons?|tonnen|t|tấn|teu|kg", "ตัน"),
    ),
    Kind(
        "area",
        asked=(
            r"hectares?|square (?:kilo)?met\w*|km2|km²",
            r"kilomètres carrés",
            r"quadratkilometer\w*",
            r"ki-lô-mét vuông|héc-ta",
            "เฮกตาร์|ตารางกิโลเมตร",
        ),
        units=(r"ha|hectares?|hektar|km2|km²|m2|m²|square \w+", "เฮกตาร์|ไร่|ตาราง"),
    ),
    Kind(
        "share",
        asked=(
            r"percent\w*|per cent|%",
            r"pourcentage|pour cent",
            r"prozent\w*|\w+quote|\w*anteil\w*",
            r"phần trăm|tỷ lệ",
            "เปอร์เซ็นต์|ร้อยละ",
        ),
        units=(r"%|percent|per cent|pour cent|prozent|phần trăm", "เปอร์เซ็นต์|ร้อยละ"),
    ),
)


def _words(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One expression for `patterns`, folded as the text is, each Latin one as whole words
    (Thai has no spaces between words)."""
    folded = [fold(p) for p in patterns]
    parts = [p if not re.search(r"[a-z]", p) else rf"(?<!\w)(?:{p})(?!\w)" for p in folded]
    return re.compile("|".join(f"(?:{p})" for p in parts))


@cache
def _asked() -> list[tuple[str, re.Pattern[str]]]:
    return [(kind.name, _words(kind.asked)) for kind in KINDS]


_FIGURE = r"\d(?:[\d.,  ]*\d)?"
# Scale words between a figure and its unit: "8.4 billion USD", "5.000 tỷ đồng", "500 ล้านบาท".
_SCALES = (r"tri\w*|bil\w*|mil\w*|mrd\.?|mio\.?|bn|k|m|tỷ|triệu|nghìn|ngàn", "ล้าน|พันล้าน|แสน|หมื่น|พัน")
_SCALE = rf"(?:\s*(?:{'|'.join(fold(s) for s in _SCALES)}))?"


@cache
def _stated(name: str) -> re.Pattern[str]:
    """A figure with one of the kind's units next to it: "1,000 MW", "$2 billion", "30%",
    "8.4 ty USD" (a scale word between them), "5 triệu đồng"."""
    kind = next(k for k in KINDS if k.name == name)
    after = rf"{_FIGURE}{_SCALE}\s*(?:{_any(kind.units)})(?![a-z])"
    if not kind.before:
        return re.compile(after)
    return re.compile(rf"{after}|(?<![a-z])(?:{_any(kind.before)})\s*{_FIGURE}")


def _any(patterns: tuple[str, ...]) -> str:
    return "|".join(f"(?:{fold(p)})" for p in patterns)


# A question asking which thing ("Which investment programmes…", "In welche Infrastruktur soll
# investiert werden?", "Quels investissements…") names money without asking an amount of it.
_WHICH = _words((r"which|welche[rsmn]?|quel(?:le)?s|nào", "ใด|ไหน"))


def kinds_asked(question: str) -> frozenset[str]:
    """The kinds of quantity `question` asks for (empty: none, or one no unit tells)."""
    text = fold(question)
    asked = {name for name, pattern in _asked() if pattern.search(text)}
    if _WHICH.search(text):
        asked.discard("money")
    return frozenset(asked)


def states_kind(sentence: str, kinds: frozenset[str] | set[str]) -> bool:
    """Whether `sentence` states a figure of one of `kinds` (with its unit)."""
    text = fold(sentence)
    return any(_stated(name).search(text) for name in kinds)
