"""Feeds: subscribe to an RSS 2.0, RSS 1.0 or Atom feed and keep answering from the full text
of every article in it.

    python -m ingest --feed URL [--feed URL ...]   # subscribe, and check it now
    python -m ingest --feeds [--prune]             # check every subscription once
    python -m ingest --feeds-list                  # subscriptions, last check, articles, error
    python -m ingest --unfeed URL                  # unsubscribe (its articles stay)

Each check asks with the validators of the last one (ETag, Last-Modified), so a feed that did
not change costs one short request. An entry is fetched again only when its id, link or
updated date changed: its article page is fetched (ingest.fetch: safely) and its main text
extracted (ingest.web); when the page cannot be had, the entry's own content is indexed and
the article says so (`content_from: feed entry`). An entry edited upstream replaces its
article; an entry gone from the feed keeps its article (news does not vanish because a feed
is short) unless the check prunes. Subscriptions live beside the index
(INDEX_DIR/web/feeds.json) and survive restarts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from bot.errors import BotError
from bot.models.embeddings import Embedder
from bot.settings import Settings
from ingest.fetch import FEED_TYPES, Fetcher, FetchError
from ingest.web import WebArticle, canonical, fetch_page, save, web_dir, web_id

log = logging.getLogger(__name__)
_ALTERNATE = re.compile(r"<link[^>]+type=[\"']application/(?:rss|atom)\+xml[\"'][^>]*>", re.I)
_HREF = re.compile(r"href=[\"']([^\"']+)[\"']", re.I)


@dataclass(frozen=True)
class Seen:
    """An entry as the last check found it, and the article it became."""

    link: str
    updated: str
    doc_id: str


@dataclass(frozen=True)
class Subscription:
    url: str
    title: str = ""
    added: str = ""
    last_checked: str = ""  # ISO 8601, UTC
    last_error: str = ""
    etag: str = ""
    modified: str = ""
    entries: dict[str, Seen] = field(default_factory=dict)  # by entry id (or link)

    @property
    def articles(self) -> int:
        return len(self.entries)

    def line(self) -> str:
        checked = self.last_checked or "never"
        error = f"; last error: {self.last_error}" if self.last_error else ""
        title = self.title or "(untitled)"
        return f"{self.url}  {title}: {self.articles} articles, checked {checked}{error}"


class Subscriptions:
    """The feeds subscribed to, in a JSON file written atomically; a lock for this process's
    writers (the CLI and the web UI each hold their own)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()

    @classmethod
    def of(cls, settings: Settings) -> Subscriptions:
        return cls(web_dir(settings) / "feeds.json")

    def load(self) -> list[Subscription]:
        if not self.path.exists():
            return []
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BotError(f"The feed subscriptions in {self.path} cannot be read: {exc}") from None
        return [_subscription(item) for item in raw.get("feeds", [])]

    def save(self, subs: list[Subscription]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        data = {"feeds": [asdict(s) for s in subs]}
        temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)

    def add(self, url: str) -> Subscription:
        """Subscribe to `url` (once: the same feed by another spelling is the same one)."""
        if not re.match(r"(?i)https?://", url.strip()):
            raise BotError(f"{url}: a feed's address starts with http:// or https://")
        with self.lock:
            subs = self.load()
            key = canonical(url)
            for sub in subs:
                if canonical(sub.url) == key:
                    return sub
            sub = Subscription(url.strip(), added=_now())
            self.save([*subs, sub])
            return sub

    def remove(self, url: str) -> bool:
        with self.lock:
            subs = self.load()
            kept = [s for s in subs if canonical(s.url) != canonical(url)]
            if len(kept) == len(subs):
                return False
            self.save(kept)
            return True

    def update(self, sub: Subscription) -> None:
        """Store a subscription's state after a check (unless it was removed meanwhile)."""
        with self.lock:
            subs = self.load()
            self.save([sub if canonical(s.url) == canonical(sub.url) else s for s in subs])


def seconds_until_due(subs: list[Subscription], minutes: float) -> float | None:
    """Seconds until the next feed is to be checked every `minutes` (0: one is due now;
    None: no feed is subscribed to)."""
    if not subs:
        return None
    now = datetime.now(UTC)
    return max(0.0, min(minutes * 60 - _age(s, now) for s in subs))


def due(subs: list[Subscription], minutes: float) -> list[Subscription]:
    """The feeds not checked for `minutes` (or never)."""
    now = datetime.now(UTC)
    return [s for s in subs if _age(s, now) >= minutes * 60 - 1]


def _age(sub: Subscription, now: datetime) -> float:
    """Seconds since the feed was last checked (infinite: never)."""
    try:
        return (now - datetime.fromisoformat(sub.last_checked)).total_seconds()
    except ValueError:
        return float("inf")


def _subscription(item: dict[str, Any]) -> Subscription:
    entries = {k: Seen(**v) for k, v in (item.get("entries") or {}).items()}
    return Subscription(**{**item, "entries": entries})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- one check -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedEntry:
    key: str  # the entry's id, else its link
    link: str
    updated: str  # as the feed writes it: what tells an edit
    date: str  # ISO 8601
    title: str
    author: str
    lang: str
    content: str  # the entry's own text (its content, else its summary), as plain text


@dataclass(frozen=True)
class Checked:
    """What one check of a feed did."""

    url: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    removed: int = 0
    from_entry: int = 0  # articles indexed from the entry's content (no page)
    not_modified: bool = False
    error: str = ""
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.error:
            return f"  failed  {self.url}: {self.error}"
        if self.not_modified:
            return f"  unchanged {self.url}: not modified since the last check"
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.unchanged} unchanged"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.removed:
            parts.append(f"{self.removed} removed")
        if self.from_entry:
            parts.append(f"{self.from_entry} from the feed's own text (page not fetched)")
        lines = [f"  checked {self.url}: {', '.join(parts)} ({self.seconds:.1f} s)"]
        return "\n".join([*lines, *(f"    {f}" for f in self.failures)])


def parse_feed(body: bytes, url: str) -> tuple[str, str, list[FeedEntry]]:
    """The feed's title, language and entries; BotError when `body` is not a feed."""
    import feedparser

    head = body[:2000].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):  # whatever its content type says
        hint = _alternate(body, url)
        raise FetchError(
            f"{url}: not a feed but an HTML page" + (f"; it names a feed at {hint}" if hint else "")
        )
    parsed = feedparser.parse(body, response_headers={"content-location": url})
    if not parsed.get("version") or (parsed.get("bozo") and not parsed.entries):
        why = parsed.get("bozo_exception")
        raise FetchError(f"{url}: not a feed (RSS or Atom)" + (f": {why}" if why else ""))
    feed = parsed.feed
    lang = str(feed.get("language") or "")
    found = []
    for e in parsed.entries:
        link = str(e.get("link") or "")
        key = str(e.get("id") or link)
        if not key:
            continue
        # dict.get: feedparser's own get maps "updated" to "published" with a warning
        stamp = dict.get(e, "updated_parsed") or dict.get(e, "published_parsed")
        content = e.get("content") or []
        body_html = str(content[0].get("value", "")) if content else str(e.get("summary") or "")
        found.append(
            FeedEntry(
                key=key,
                link=link,
                updated=str(dict.get(e, "updated") or dict.get(e, "published") or ""),
                date=time.strftime("%Y-%m-%dT%H:%M:%SZ", stamp) if stamp else "",
                title=str(e.get("title") or ""),
                author=str(e.get("author") or ""),
                lang=str((content[0].get("language") if content else "") or lang),
                content=plain_text(body_html),
            )
        )
    if parsed.get("bozo") and not found:  # broken XML that yields nothing to index
        raise FetchError(f"{url}: not a feed (RSS or Atom): {parsed.get('bozo_exception')}")
    return str(feed.get("title") or ""), lang, found


def _alternate(page: bytes, url: str) -> str:
    from urllib.parse import urljoin

    tag = _ALTERNATE.search(page[:200_000].decode("utf-8", errors="replace"))
    href = _HREF.search(tag.group(0)) if tag else None
    return urljoin(url, href.group(1)) if href else ""


def check_feed(
    sub: Subscription,
    settings: Settings,
    fetcher: Fetcher,
    prune: bool = False,
    embedder: Embedder | None = None,
    writing: AbstractContextManager[object] | None = None,
) -> tuple[Subscription, Checked]:
    """Check one feed: the subscription's new state and what the check did. Nothing of an
    entry whose page and content both fail is indexed; the feed's own failure is its
    `error` (and the subscription's last_error). `writing` is held while the index is
    written (not while pages are fetched)."""
    from ingest.pipeline import ingest_paths, remove_articles

    writing = writing or nullcontext()
    started = time.perf_counter()
    headers = {}
    if sub.etag:
        headers["If-None-Match"] = sub.etag
    if sub.modified:
        headers["If-Modified-Since"] = sub.modified
    try:
        got = fetcher.get(sub.url, (*FEED_TYPES, "text/html"), headers)
        if got.not_modified:
            done = replace(sub, last_checked=_now(), last_error="")
            return done, Checked(sub.url, not_modified=True, seconds=_since(started))
        title, _, entries = parse_feed(got.body, got.final_url)
    except BotError as exc:
        failed = replace(sub, last_checked=_now(), last_error=_short(str(exc), sub.url))
        return failed, Checked(sub.url, error=failed.last_error, seconds=_since(started))
    folder = web_dir(settings) / "articles"
    todo = [e for e in entries if _changed(e, sub.entries.get(e.key))]
    saved: dict[str, tuple[FeedEntry, str]] = {}  # path -> entry, doc id
    failures, from_entry = [], 0
    for entry in todo:
        try:
            article = _article(entry, sub.url, fetcher)
        except BotError as exc:
            failures.append(f"{entry.link or entry.key}: {exc}")
            continue
        from_entry += article.content_from != "page"
        saved[str(save(article, folder))] = (entry, article.doc_id)
    seen = dict(sub.entries)
    counts = {"added": 0, "updated": 0, "unchanged": 0, "failed": len(failures)}
    if saved:
        with writing:
            summary = ingest_paths([Path(p) for p in saved], settings, embedder, progress=False)
        for result in summary.results:
            entry, doc_id = saved[str(folder / result.name)]
            counts[result.status] = counts.get(result.status, 0) + 1
            if result.status == "failed":
                failures.append(f"{entry.link or entry.key}: {result.reason}")
            else:
                seen[entry.key] = Seen(entry.link, entry.updated, doc_id)
    removed = 0
    if prune:
        present = {e.key for e in entries}
        gone = [k for k in seen if k not in present]
        if gone:
            with writing:
                pruned = remove_articles([seen[k].doc_id for k in gone], settings, embedder)
            removed = pruned.counts["removed"]
            for k in gone:
                del seen[k]
    done = replace(
        sub,
        title=title or sub.title,
        last_checked=_now(),
        last_error="",
        etag=got.etag,
        modified=got.last_modified,
        entries=seen,
    )
    return done, Checked(
        sub.url,
        added=counts["added"],
        updated=counts["updated"],
        unchanged=counts["unchanged"] + len(entries) - len(todo),
        failed=counts["failed"],
        removed=removed,
        from_entry=from_entry,
        seconds=_since(started),
        failures=failures,
    )


def _changed(entry: FeedEntry, seen: Seen | None) -> bool:
    return seen is None or seen.link != entry.link or seen.updated != entry.updated


def _article(entry: FeedEntry, feed: str, fetcher: Fetcher) -> WebArticle:
    """The entry's article: its page's main text, else the entry's own content (saying why)."""
    doc_id = web_id(entry.key)
    note = "the entry has no link"
    if entry.link:
        try:
            page = fetch_page(fetcher, entry.link)
            return replace(
                page,
                doc_id=doc_id,
                title=entry.title or page.title,
                date=entry.date or page.date,
                author=entry.author or page.author,
                lang=entry.lang or page.lang,
                origin="feed",
                feed=feed,
            )
        except BotError as exc:
            note = str(exc)
            log.info("entry %s: page not fetched (%s); its own content is used", entry.key, exc)
    if not entry.content.strip():
        raise BotError(f"no text: the page could not be had ({note}) and the entry holds none")
    return WebArticle(
        doc_id=doc_id,
        text="\n".join(p for p in [entry.title, entry.content] if p),
        url=canonical(entry.link) if entry.link else "",
        title=entry.title,
        date=entry.date,
        author=entry.author,
        lang=entry.lang,
        origin="feed",
        feed=feed,
        content_from="feed entry",
        note=note,
    )


def _short(error: str, url: str) -> str:
    """A feed's error without its address in front (the Library shows it beside it)."""
    return error.removeprefix(f"{url}: ")


def _since(started: float) -> float:
    return time.perf_counter() - started


def check_feeds(
    settings: Settings,
    urls: list[str] | None = None,
    prune: bool = False,
    fetcher: Fetcher | None = None,
    subscriptions: Subscriptions | None = None,
    embedder: Embedder | None = None,
    writing: AbstractContextManager[object] | None = None,
) -> list[Checked]:
    """Check every subscription (or those of `urls`), one after the other, each one's state
    stored as soon as it is checked."""
    store = subscriptions or Subscriptions.of(settings)
    own = fetcher is None
    fetcher = fetcher or Fetcher.from_settings(settings)
    wanted = {canonical(u) for u in urls} if urls is not None else None
    results = []
    try:
        for sub in store.load():
            if wanted is not None and canonical(sub.url) not in wanted:
                continue
            done, checked = check_feed(sub, settings, fetcher, prune, embedder, writing)
            store.update(done)
            results.append(checked)
    finally:
        if own:
            fetcher.close()
    return results


def poll(
    store: Subscriptions,
    minutes: float,
    check: Callable[[list[str]], object],
    stop: threading.Event,
    wake: threading.Event | None = None,
) -> None:
    """Until `stop` is set: `check(urls)` the feeds due, each `minutes` after its last check
    (`wake` set: a feed was added, look again)."""
    wake = wake or threading.Event()
    while not stop.is_set():
        wait: float | None = minutes * 60
        try:
            todo = due(store.load(), minutes)
            if todo:
                check([s.url for s in todo])
            wait = seconds_until_due(store.load(), minutes)
        except Exception:  # one bad check must not end the polling: the next one tries again
            log.exception("checking the feeds failed")
        if wait is None or wait > 0:
            wake.wait(wait)
        wake.clear()


# -- an entry's own text -------------------------------------------------------------------------
_BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(fragment: str) -> str:
    """An entry's HTML content as plain text, a paragraph a line."""
    parser = _Text()
    parser.feed(fragment)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)
