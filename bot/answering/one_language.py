"""Answers in one language: a checked answer's sentences that carry words of the articles'
language ("the line ferroviaire", "the Parteisekretär of Hai Phong"; bot.text.foreign) are
translated in place by the LLM ("railway" for "ferroviaire"), or where that leaves some, the
sentence rewritten, or where the model cannot (a whole French sentence copied into an English
answer), the sentence replaced by the stored translation of its evidence (bot.answering.pivot).

A change is kept only when the sentence keeps its markers and numbers, no foreign word is left
in it and, if the citation check supported it, the check supports it still (a rewrite that
says something else fails there). A sentence no change fixes keeps its words, and the answer
records them (`Answer.foreign_left`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.answering.citations import MARKER, MARKERS
from bot.answering.prompts import render
from bot.answering.records import Checked, Claim
from bot.errors import BotError
from bot.models.llm import ChatModel, Message
from bot.text.foreign import Term, foreign_terms
from bot.text.language import language_name

log = logging.getLogger(__name__)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LIST_ITEM = re.compile(r"\s*(?:[-*•]|\d+[.)])\s+")
_NAME = re.compile(r"\b[^\W\d_][\w'’-]*")  # a word (a name when capitalised)
_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s*(.+?)\s*$")


@dataclass(frozen=True)
class OneLanguage:
    """A checked answer after the repair: its text and claims, the foreign terms found in it and
    those left."""

    checked: Checked
    found: list[str]
    left: list[str]


def in_one_language(
    llm: ChatModel,
    checked: Checked,
    lang: str,
    sources: set[str],
    keep: set[str],
    supported: Callable[[str], bool],
    timings: dict[str, float],
    stored: Callable[[Claim], str] | None = None,
) -> OneLanguage:
    """`checked` with every sentence that carries words of `sources` (the languages of what the
    model read) rewritten in `lang`; `keep`: words never foreign (the question's);
    `supported`: the citation check of one sentence (bot.answering.support.SentenceCheck), which
    a supported sentence must pass again once rewritten; `stored`: a supported claim's evidence
    sentence in its stored translation into `lang` ("" when none), the last resort."""
    started = time.perf_counter()
    text, found, left = checked.text, [], []
    pieces: list[tuple[Claim, str]] = []
    for claim in checked.claims:
        piece = text[claim.start : claim.end]
        terms = foreign_terms(piece, lang, sources, keep)
        if terms:
            found += [t.text for t in terms]
            check = supported if claim.supported else None
            translation = stored(claim) if stored and claim.supported else ""
            piece, how = _fixed(llm, piece, terms, lang, sources, keep, check, translation)
            left += [t.text for t in foreign_terms(piece, lang, sources, keep)]
            if how == "stored":
                timings["one_language_stored"] = timings.get("one_language_stored", 0) + 1
        pieces.append((claim, piece))
    if not found:
        return OneLanguage(checked, [], [])
    timings["one_language_s"] = time.perf_counter() - started
    log.info("foreign words %s; left %s", found, left)
    out, claims, last = [], [], 0
    for claim, piece in pieces:
        out.append(text[last : claim.start])
        start = sum(len(t) for t in out)
        out.append(piece)
        body = MARKERS.sub("", piece).strip()
        claims.append(replace(claim, start=start, end=start + len(piece), text=body))
        last = claim.end
    out.append(text[last:])
    return OneLanguage(Checked("".join(out), checked.citations, claims), found, left)


def _fixed(
    llm: ChatModel,
    piece: str,
    terms: list[Term],
    lang: str,
    sources: set[str],
    keep: set[str],
    supported: Callable[[str], bool] | None,
    translation: str = "",
) -> tuple[str, str]:
    """The sentence `piece` with `terms` translated in place, or else rewritten, or else its
    evidence's stored `translation` (cited as it was), or as it was; a sentence the check
    supported (`supported` given) must still be supported after. Also says how: "translated",
    "rewritten", "stored" or "" (as it was)."""
    lead = _LIST_ITEM.match(piece) or re.match(r"\s*", piece)  # a list item's mark, spaces
    head = piece[: lead.end()] if lead else ""
    core = piece[len(head) :]
    trail = core[len(core.rstrip()) :]
    core = core.rstrip()
    for fix in (_translated, _rewritten):
        fixed = fix(llm, core, [_shifted(t, -len(head)) for t in terms], lang)
        if (
            fixed != core
            and _faithful(core, fixed, terms, len(head))
            and not foreign_terms(fixed, lang, sources, keep)
            and (supported is None or supported(fixed))
        ):
            return head + fixed + trail, fix.__name__.strip("_")
        log.info("%s left foreign words in %r: %r", fix.__name__, core, fixed)
    fixed = _cited_as(translation, core)
    if (
        fixed
        and len(fixed) <= STORED_LONGER * len(core)
        and not foreign_terms(fixed, lang, sources, keep)
        and (supported is None or supported(fixed))
    ):
        log.info("the stored translation replaced %r: %r", core, fixed)
        return head + fixed + trail, "stored"
    return piece, ""


STORED_LONGER = 2.5  # how much longer than the sentence its evidence's translation may be


def _cited_as(translation: str, core: str) -> str:
    """`translation` with the markers of sentence `core` at its end ("" without one)."""
    words = MARKERS.sub("", translation).strip().rstrip(".!?;:")
    if not words:
        return ""
    marks = "".join(f"[{n}]" for n in MARKER.findall(core))
    end = "." if core.rstrip().endswith(".") or marks else ""
    return f"{words} {marks}{end}" if marks else f"{words}{end}"


def _shifted(term: Term, by: int) -> Term:
    return replace(term, start=term.start + by, end=term.end + by)


def _rewritten(llm: ChatModel, core: str, terms: list[Term], lang: str) -> str:
    """The sentence rewritten by the LLM in `lang` (one line; "" when it gave more)."""
    try:
        reply = llm.complete(rewrite_messages(core, terms, lang), _budget(core))
    except BotError as exc:
        log.warning("rewriting in one language failed: %s", exc)
        return core
    return _LIST_ITEM.sub("", _one_line(reply), count=1)


def _translated(llm: ChatModel, core: str, terms: list[Term], lang: str) -> str:
    """`core` with each term (offsets in `core`) replaced by the LLM's translation of it (one
    that takes in the word next to the term, "railway line" for "ferroviaire" after "line",
    replaces both)."""
    try:
        reply = llm.complete(terms_messages(core, terms, lang), 16 * len(terms) + 16)
    except BotError as exc:
        log.warning("translating foreign words failed: %s", exc)
        return core
    translations = _numbered(reply, len(terms))
    out = core
    for term, translation in sorted(
        zip(terms, translations, strict=True), key=lambda p: -p[0].start
    ):
        if not translation:
            continue
        start, end = term.start, term.end
        before = re.search(r"(\w+)\s+$", out[:start])
        after = re.match(r"\s+(\w+)", out[end:])
        words = translation.split()
        if before and words[-1].lower() == before.group(1).lower():
            start = before.start(1)
        elif after and words[0].lower() == after.group(1).lower():
            end += after.end(1)
        if start == 0 or out[:start].rstrip().endswith((".", "!", "?")):
            translation = translation[:1].upper() + translation[1:]
        else:
            translation = translation if translation[:2].isupper() else translation.lower()
        out = out[:start] + translation + out[end:]
    return out


def terms_messages(core: str, terms: list[Term], lang: str) -> list[Message]:
    """The prompt that asks for the terms of sentence `core`, numbered, in `lang`."""
    listing = "\n".join(f"{i}. {t.text}" for i, t in enumerate(terms, 1))
    prompt = render(
        "translate_terms",
        language=language_name(lang),
        source=language_name(terms[0].lang),
        sentence=core,
        terms=listing,
    )
    return [{"role": "user", "content": prompt}]


def rewrite_messages(core: str, terms: list[Term], lang: str) -> list[Message]:
    """The prompt that asks for sentence `core` again in `lang` only, without `terms`."""
    prompt = render(
        "one_language",
        language=language_name(lang),
        source=language_name(terms[0].lang),
        terms=", ".join(f'"{t.text}"' for t in terms),
        sentence=core,
    )
    return [{"role": "user", "content": prompt}]


def _numbered(reply: str, n: int) -> list[str]:
    """The `n` items of a numbered reply ("1. railway"); a one-item reply may be unnumbered."""
    items: dict[int, str] = {}
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    for line in lines:
        m = _NUMBERED.match(line)
        if m:
            items.setdefault(int(m.group(1)), m.group(2).strip(" \"'."))
    if n == 1 and not items and len(lines) == 1:
        items[1] = lines[0].strip(" \"'.")
    return [items.get(i, "") for i in range(1, n + 1)]


def _one_line(reply: str) -> str:
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    return lines[0].strip('"“”') if len(lines) == 1 else ""


def _faithful(original: str, rewritten: str, terms: list[Term], offset: int) -> bool:
    """Whether a rewrite keeps the sentence's markers, numbers and names (its capitalised words
    outside `terms`, whose offsets are `offset` past `original`'s), at a sane length."""
    spans = [(t.start - offset, t.end - offset) for t in terms]
    names = {
        m.group()
        for m in _NAME.finditer(original)
        if m.start() > 0
        and m.group()[:1].isupper()
        and not any(a <= m.start() < b for a, b in spans)
    }
    return (
        bool(rewritten)
        and all(re.search(rf"\b{re.escape(name)}\b", rewritten) for name in names)
        and MARKER.findall(rewritten) == MARKER.findall(original)
        and sorted(_NUMBER.findall(MARKERS.sub("", rewritten)))
        == sorted(_NUMBER.findall(MARKERS.sub("", original)))
        and 0.5 <= len(rewritten) / max(1, len(original)) <= 1.8
    )


def _budget(sentence: str) -> int:
    """Tokens a rewrite of `sentence` may take: about one per three characters, and room."""
    return len(sentence) // 2 + 24
