"""Cut site boilerplate from an article and keep its body, recording every line it cut and why.

News sites wrap the story in navigation ("Same tag", "Comment (0)", "No data"), image stubs
("![]() |", "hai-phong.jpg"), repeated captions ("The Delegates" four times), a site banner
and a dateline. Source lines, banners and datelines are cut from the body but kept as metadata.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

_NAV = re.compile(
    r"^(?:"
    r"(?:comments?|kommentare?|commentaires?|bình luận|การแสดงความคิดเห็น|ความคิดเห็น)\s*\(\d+\)"
    r"|same (?:tag|category|author|topic)|même (?:sujet|catégorie|auteur)"
    r"|gleiche[rs]? (?:tag|kategorie|autor)|cùng (?:chủ đề|chuyên mục|tác giả)"
    r"|no data|no videos available|related (?:articles|news)|read more|lire aussi|mehr zum thema"
    r")$",
    re.IGNORECASE,
)
_SOURCE = re.compile(
    r"^(?:source|sources|quelle|nguồn|ที่มา|fuente|fonte)\s*:\s*(https?://\S+)\s*$", re.IGNORECASE
)
_IMAGE_STUB = re.compile(
    r"^(?:!\[[^\]]*\]\([^)]*\)\s*\|?|\S+\.(?:jpe?g|png|gif|webp|svg|avif))$", re.IGNORECASE
)
_DOMAIN = r"[\w-]+(?:\.[\w-]+)*\.(?:vn|com|net|org|gov|edu|info|de|fr|th|uk|io)(?:\.[a-z]{2})?"
_BANNER = re.compile(r"^(?P<a>.{2,60}?)\s+[-–|]\s+(?P<b>.{2,60})$")
_DATE_DMY = re.compile(r"(?<!\d)(\d{1,2})/(\d{1,2})/(\d{4})(?!\d)")
_DATE_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_SENTENCE_END = re.compile(r"[.!?…。:;»\"”)]$")
# A body line never needs more than this to be a caption, a nav link or a banner.
_SHORT = 80


@dataclass
class Cleaned:
    paragraphs: list[str]
    cut: list[tuple[str, str]] = field(default_factory=list)  # (line, reason)
    source_url: str = ""
    publisher: str = ""
    date: str = ""  # ISO 8601, "" when the text has none

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


def clean_article(text: str) -> Cleaned:
    """Split `text` into body paragraphs and cut the site boilerplate around them."""
    lines = [line.strip() for line in text.split("\n")]
    out = Cleaned(paragraphs=[])
    lines = _cut_trailing_nav(lines, out)
    counts = Counter(line for line in lines if line)
    seen: set[str] = set()
    body_started = False
    last = max((i for i, line in enumerate(lines) if line), default=-1)
    for i, line in enumerate(lines):
        if not line:
            continue
        reason = _boilerplate(line, out, at_head=not body_started, at_tail=i == last)
        repeated = counts[line] > 1 and len(line) <= _SHORT
        # A repeated caption goes; a repeated sentence keeps its first occurrence.
        if reason is None and repeated and (not _SENTENCE_END.search(line) or line in seen):
            reason = "repeated caption"
        if reason:
            out.cut.append((line, reason))
            continue
        seen.add(line)
        body_started = True
        out.paragraphs.append(_strip_table_pipe(line))
    return out


def _cut_trailing_nav(lines: list[str], out: Cleaned) -> list[str]:
    """Cut from the first navigation marker on, if only short lines (links, menus) follow it."""
    for i, line in enumerate(lines):
        if _NAV.match(line) and all(len(rest) <= 2 * _SHORT for rest in lines[i:]):
            out.cut.extend((rest, "trailing navigation") for rest in lines[i:] if rest)
            return lines[:i]
    return lines


def _boilerplate(line: str, out: Cleaned, at_head: bool, at_tail: bool) -> str | None:
    """The reason `line` is boilerplate (recording any metadata it carries), or None."""
    if _NAV.match(line):
        return "navigation"
    if _IMAGE_STUB.match(line):
        return "image stub"
    source = _SOURCE.match(line)
    if source:
        out.source_url = out.source_url or source.group(1)
        return "source line (kept as metadata)"
    if len(line) <= 40 and not out.date:
        parsed = _parse_date(line)
        letters = sum(ch.isalpha() for ch in line)
        if parsed and letters <= 20:
            out.date = parsed
            return "dateline (kept as metadata)"
    if (at_head or at_tail) and len(line) <= _SHORT and not _SENTENCE_END.search(line):
        banner = _BANNER.match(line)
        if banner:
            parts = [banner.group("a"), banner.group("b")]
            domains = [p for p in parts if re.fullmatch(_DOMAIN, p, re.IGNORECASE)]
            named = [p for p in parts if re.search(_DOMAIN, p, re.IGNORECASE)]
            if domains or (at_head and named):
                name = parts[0] if parts[1] in domains else named[0] if named else parts[0]
                out.publisher = out.publisher or (
                    f"{parts[0]} ({parts[1]})" if parts[1] in domains else name
                )
                return "site banner (kept as metadata)"
    return None


def _parse_date(text: str) -> str:
    iso = _DATE_ISO.search(text)
    try:
        if iso:
            return date(int(iso[1]), int(iso[2]), int(iso[3])).isoformat()
        dmy = _DATE_DMY.search(text)
        if dmy:  # Vietnamese and European sites write day/month/year.
            return date(int(dmy[3]), int(dmy[2]), int(dmy[1])).isoformat()
    except ValueError:
        return ""
    return ""


def _strip_table_pipe(line: str) -> str:
    """Captions exported from layout tables end in a stray cell border: 'Caption text. |'."""
    return line[:-1].rstrip() if line.endswith(" |") else line
