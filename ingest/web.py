"""Articles from the web: a page fetched by its address (`python -m ingest --url URL`, the
Library's field) or a feed's entry (ingest.feeds), its main text extracted with trafilatura.

An article fetched is saved as a small HTML file of its own under INDEX_DIR/web/articles
(readable in a browser; its text and metadata also held as JSON in it, which
ingest.readers takes as they are) and indexed like any file: an unchanged page writes
nothing, a changed one replaces its article. Its id comes from its canonical link (a
feed's entry: its id, or its link), so the same article added twice, or through another
address, is one article.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.errors import BotError
from bot.models.embeddings import Embedder
from bot.settings import Settings
from ingest.fetch import PAGE_TYPES, Fetcher, FetchError

SAVED_ID = "newsqa-article"  # the id of the JSON script element a saved article holds
_SAVED = re.compile(r'<script type="application/json" id="' + SAVED_ID + r'">(.*?)</script>', re.S)
_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid)$", re.I)


@dataclass(frozen=True)
class WebArticle:
    """An article from the web, as it is saved and indexed."""

    doc_id: str
    text: str
    url: str  # the canonical link, else the address it was fetched from
    title: str = ""
    date: str = ""  # as the page or feed gives it (the index keeps YYYY-MM-DD)
    author: str = ""
    lang: str = ""  # as the page or feed declares it ("" : detected from the text)
    origin: str = "url"  # "url" (added by its address) or "feed"
    feed: str = ""  # the feed's address, for an entry of one
    content_from: str = "page"  # "page", or "feed entry" when the page could not be had
    note: str = ""  # why the page could not be had


def canonical(url: str) -> str:
    """`url` without what does not name the article: the fragment, tracking parameters, a
    default port, the case of scheme and host, a trailing slash."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if parts.port in (None, default) else f"{host}:{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if not _TRACKING.match(k)])
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), netloc, path, query, ""))


def web_id(key: str) -> str:
    """The article id of a page or entry named by `key` (a link, or a feed entry's id)."""
    link = canonical(key) if re.match(r"(?i)https?://", key.strip()) else key.strip()
    host = (urlsplit(link).hostname or "web").removeprefix("www.")
    slug = re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-")[:40] or "web"
    return f"{slug}_{hashlib.sha256(link.encode('utf-8')).hexdigest()[:16]}"


def decoded(body: bytes, charset: str) -> str:
    """A page's text in the charset it declares (UTF-8 when it declares none it can be read
    in)."""
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def extract(page: bytes, url: str, charset: str = "") -> dict[str, str]:
    """The main text of an HTML page and what it says of itself (title, canonical url, date,
    author, language), by trafilatura; "text" is "" when it finds none."""
    import trafilatura

    markup = decoded(page, charset)
    doc = trafilatura.bare_extraction(
        markup, url=url, include_comments=False, include_tables=True, with_metadata=True
    )
    data = (doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)) if doc is not None else {}
    found = {k: str(data[k]) for k in ("text", "title", "url", "date", "author") if data.get(k)}
    lang = re.search(r"<html[^>]*\blang=[\"']?([A-Za-z]{2})", markup[:4000])
    if lang:
        found["lang"] = lang.group(1).lower()
    return found


def fetch_page(fetcher: Fetcher, url: str) -> WebArticle:
    """The article at `url`, its id from its canonical link; FetchError when the page cannot
    be had or holds no text."""
    page = fetcher.get(url, PAGE_TYPES)
    if page.content_type == "text/plain":
        found = {"text": decoded(page.body, page.charset)}
    else:
        found = extract(page.body, page.final_url, page.charset)
    if not found.get("text", "").strip():
        raise FetchError(f"{url}: no article text found in the page")
    link = found.get("url") if _same_site(found.get("url", ""), page.final_url) else None
    link = link or page.final_url
    return WebArticle(
        doc_id=web_id(link),
        text=found["text"],
        url=canonical(link),
        title=found.get("title", ""),
        date=found.get("date", ""),
        author=found.get("author", ""),
        lang=found.get("lang", ""),
    )


def _same_site(link: str, fetched: str) -> bool:
    """Whether a page's canonical link may name it: an http(s) link on the host it was
    fetched from, or a subdomain of its parent (a page may not claim another site's id)."""
    if not re.match(r"(?i)https?://", link):
        return False
    a, b = urlsplit(link).hostname or "", urlsplit(fetched).hostname or ""
    if re.fullmatch(r"[\d.]+|.*:.*", b):  # fetched by its address: that address only
        return a == b
    base = ".".join(b.split(".")[-2:])
    return a in (b, base) or a.endswith("." + base)


# -- saved as a file -----------------------------------------------------------------------------
def web_dir(settings: Settings) -> Path:
    """Where fetched articles and the feed subscriptions are kept, beside the index."""
    return settings.index_dir / "web"


def save(article: WebArticle, folder: Path) -> Path:
    """Write the article as `<doc_id>.html` in `folder` (atomically: a reader never sees it
    half-written); the same article saved again gives the same bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(asdict(article), ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    paragraphs = "\n".join(f"<p>{html.escape(p)}</p>" for p in article.text.split("\n") if p)
    page = (
        "<!doctype html>\n"
        f'<html lang="{html.escape(article.lang or "")}"><head><meta charset="utf-8">\n'
        f"<title>{html.escape(article.title)}</title>\n"
        f'<link rel="canonical" href="{html.escape(article.url)}">\n'
        f'<script type="application/json" id="{SAVED_ID}">{data}</script>\n'
        f"</head><body><article>\n{paragraphs}\n</article></body></html>\n"
    )
    path = folder / f"{article.doc_id}.html"
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, path)
    return path


def saved(markup: str) -> WebArticle | None:
    """The article a saved file holds (None: the HTML is not one of ours)."""
    match = _SAVED.search(markup)
    if not match:
        return None
    try:
        data: dict[str, Any] = json.loads(match.group(1))
        return WebArticle(**{k: str(v) for k, v in data.items()})
    except (ValueError, TypeError):
        return None


def format_meta(article: WebArticle) -> dict[str, str]:
    """What ingestion takes from the article besides its text (ingest.metadata.describe)."""
    meta = {
        "title": article.title,
        "url": article.url,
        "date": article.date,
        "author": article.author,
        "lang": article.lang,
        "origin": article.origin,
        "feed": article.feed,
        "content_from": article.content_from,
    }
    return {k: v for k, v in meta.items() if v}


def add_urls(
    urls: list[str],
    settings: Settings,
    fetcher: Fetcher | None = None,
    embedder: Embedder | None = None,
) -> list[Added]:
    """Fetch each page, save it and index it; a result per address, in order."""
    from ingest.pipeline import ingest_paths

    own = fetcher is None
    fetcher = fetcher or Fetcher.from_settings(settings)
    folder = web_dir(settings) / "articles"
    results: list[Added] = []
    try:
        paths = []
        for url in urls:
            try:
                article = fetch_page(fetcher, url)
            except BotError as exc:
                results.append(Added(url, "", "failed", str(exc)))
                continue
            path = save(article, folder)
            if path not in paths:  # the same article through two addresses: indexed once
                paths.append(path)
            results.append(Added(url, article.doc_id, "fetched", title=article.title))
        if paths:
            summary = ingest_paths(paths, settings, embedder, progress=False)
            by_id = {r.doc_id: r for r in summary.results}
            results = [
                replace(a, status=by_id[a.doc_id].status, reason=by_id[a.doc_id].reason)
                if a.doc_id in by_id
                else a
                for a in results
            ]
    finally:
        if own:
            fetcher.close()
    return results


@dataclass(frozen=True)
class Added:
    """What adding one page did: its status as ingestion says it (added, updated,
    unchanged, failed) and why it failed."""

    url: str
    doc_id: str
    status: str
    reason: str = ""
    title: str = ""

    def line(self) -> str:
        if self.status == "failed":
            return f"  failed  {self.url}: {self.reason}"
        return f"  {self.status:<9} {self.doc_id}  {self.title or self.url}"
