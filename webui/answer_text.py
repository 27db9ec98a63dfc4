"""The answer as the chat shows it: its [n] markers link to their cards, and the sentences the
citation check could not find in the passages they cite are marked. The conversation's history
keeps the plain text (`unlinked` takes both back off)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

_MARKER = re.compile(r"\[(\d{1,3})\](?!\()")
_LINK = re.compile(r"\[\[(\d{1,3})\]\]\(#nqa-src-\d{1,3}\)")
_LIST_ITEM = re.compile(r"\s*(?:[-*•]|\d{1,2}[.)])\s+|\s*")
UNSUPPORTED_TIP = "The passages this sentence cites do not clearly say this: check it."
_OPEN = f'<span class="nqa-unsupported" title="{html.escape(UNSUPPORTED_TIP, quote=True)}">'
_CLOSE = '<small class="nqa-flag"> ⚠ not found in its source</small></span>'
_FLAG = re.compile(re.escape(_OPEN) + "|" + re.escape(_CLOSE))
_DRAFT = re.compile(r"\n\n<details class=\"nqa-draft\">.*</details>\Z", re.S)


def linked(text: str) -> str:
    """Each [n] a link to its card in the sources panel (the page's script opens the card and
    scrolls to it: webui.assets.CLICK_MARKERS)."""
    return _MARKER.sub(r"[[\1]](#nqa-src-\1)", text)


def unlinked(text: str) -> str:
    """The plain answer back from what the chat shows."""
    return _FLAG.sub("", _LINK.sub(r"[\1]", _DRAFT.sub("", text)))


def flagged(text: str, claims: Sequence[Any]) -> str:
    """`text` with each sentence the check looked at and found no support for (a
    bot.answering.records.Claim with evidence but not `supported`) marked; a list item keeps
    its bullet outside the mark, and a piece over several lines is left as it is."""
    out, last = [], 0
    for claim in sorted(claims, key=lambda c: c.start):
        if claim.supported or not claim.evidence or claim.start < last:
            continue
        piece = text[claim.start : claim.end]
        lead = _LIST_ITEM.match(piece)
        start = claim.start + (lead.end() if lead else 0)
        end = claim.start + len(piece.rstrip())
        if end <= start or "\n" in text[start:end]:
            continue
        out += [text[last:start], _OPEN, text[start:end], _CLOSE]
        last = end
    return "".join([*out, text[last:]])


DRAFT_SUMMARY = "Unverified draft: the model's reply, which the articles do not seem to support"


def with_draft(notice: str, draft: str) -> str:
    """The notice that replaces an unsupported reply, the reply folded under it."""
    return (
        f'{notice}\n\n<details class="nqa-draft"><summary>{DRAFT_SUMMARY}</summary>\n\n'
        f"{draft}\n\n</details>"
    )
