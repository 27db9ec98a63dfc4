"""Article metadata: id, title, language, source URL, publisher, date, hashes, story."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bot.text.language import NAMES, detect_language
from bot.text.sentences import split_sentences
from ingest.clean import Cleaned

_TITLE_MAX = 120


@dataclass
class ArticleMeta:
    doc_id: str
    title: str
    lang: str
    source_url: str
    publisher: str
    date: str
    content_hash: str  # sha256 of the file's bytes
    story_id: str  # shared by translations of one story (same source URL)
    file_name: str
    author: str = ""
    origin: str = ""  # "" (a file), "url" (a page added by its address) or "feed" (ingest.web)
    feed: str = ""  # the address of the feed it came from
    content_from: str = ""  # a fetched article's text: "page", or "feed entry" (no page)

    def as_chroma(self) -> dict[str, str]:
        """Chroma metadata holds scalars only; a missing value is stored as ""."""
        return {key: str(value) for key, value in asdict(self).items()}


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def story_id(source_url: str, doc_id: str) -> str:
    """Articles with the same source URL are translations of one story."""
    if not source_url:
        return doc_id
    parts = urlsplit(source_url.strip())
    canonical = f"{parts.netloc.lower().removeprefix('www.')}{parts.path.rstrip('/')}"
    return "story-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def make_title(cleaned: Cleaned, lang: str, hint: str = "") -> str:
    """The format's own title if it has one, else a headline-like first line, else its first
    sentence, shortened at a word boundary."""
    if hint.strip():
        return _shorten(hint.strip())
    first = cleaned.paragraphs[0] if cleaned.paragraphs else ""
    if len(first) <= _TITLE_MAX and not first.rstrip().endswith((".", "!", "?")):
        return first
    start, end = split_sentences(first, lang)[0] if first else (0, 0)
    return _shorten(first[start:end].strip())


def _shorten(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    if len(text) <= _TITLE_MAX:
        return text
    cut = text[:_TITLE_MAX]
    space = cut.rfind(" ")
    return (cut[:space] if space > _TITLE_MAX // 2 else cut).rstrip(" ,;:-") + "…"


def describe(path: Path, data: bytes, cleaned: Cleaned, format_meta: dict[str, str]) -> ArticleMeta:
    declared = format_meta.get("lang", "").lower()[:2]  # a feed's "fr-FR"
    lang = declared if declared in NAMES else detect_language(cleaned.text)
    source_url = cleaned.source_url or format_meta.get("url", "")
    if format_meta.get("origin"):  # fetched from the web: where it was fetched from
        source_url = format_meta.get("url", "") or cleaned.source_url
    publisher = cleaned.publisher or format_meta.get("sitename", "")
    if not publisher and source_url:
        publisher = urlsplit(source_url).netloc.lower().removeprefix("www.")
    return ArticleMeta(
        doc_id=path.stem,
        title=make_title(cleaned, lang, format_meta.get("title", "")),
        lang=lang,
        source_url=source_url,
        publisher=publisher,
        date=_date(cleaned, format_meta),
        content_hash=content_hash(data),
        story_id=story_id(source_url, path.stem),
        file_name=path.name,
        author=format_meta.get("author", ""),
        origin=format_meta.get("origin", ""),
        feed=format_meta.get("feed", ""),
        content_from=format_meta.get("content_from", ""),
    )


def _date(cleaned: Cleaned, format_meta: dict[str, str]) -> str:
    """A file's dateline, else the date its format gives; a fetched article's own date first
    (a feed's or page's date, not one its text happens to hold)."""
    declared = format_meta.get("date", "")[:10]
    if format_meta.get("origin"):
        return declared or cleaned.date
    return cleaned.date or declared
