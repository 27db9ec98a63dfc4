"""Feeds and pages by URL (ingest.feeds, ingest.web) from a real HTTP server on 127.0.0.1
serving an RSS feed, an Atom feed and article pages made from the shipped corpus (its text
inside a site's menus, teasers and footer), with ETags; indexed with the hashing embedder
into a real Chroma."""

from __future__ import annotations

import html
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answering.pipeline import answer
from bot.answering.question import Question
from bot.deps import build_deps
from bot.index.store import open_index
from bot.models.embeddings import make_embedder
from bot.models.fake_llm import FakeChat
from bot.retrieval.articles import article_passages
from bot.retrieval.records import Filters
from bot.settings import Settings
from ingest.__main__ import main as ingest_main
from ingest.feeds import Subscriptions, check_feeds, parse_feed
from ingest.fetch import FetchError
from ingest.pipeline import ingest_paths
from ingest.web import add_urls, web_id
from tests.conftest import CORPUS, make_settings
from tests.test_watch import _lines, _until, start_watch
from tests.web_server import Route, WebServer, serving
from webui.library import article_page

ENGLISH = ["002_1ca994a0bc34cf02", "004_7234e428cdcd5127"]
FRENCH = "003_b526725865409856"


def _text(doc_id: str) -> str:
    return (CORPUS / f"{doc_id}.txt").read_text(encoding="utf-8")


def _page(doc_id: str, title: str, extra: str = "") -> bytes:
    """The article inside a news site's page: menus, teasers, a footer around its text."""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in _text(doc_id).split("\n") if p.strip())
    return (
        f"<!doctype html><html><head><title>{html.escape(title)} | Port News</title></head>"
        "<body><header><nav><a href='/'>Home</a> <a href='/world'>World</a> "
        "<a href='/sport'>Sport</a> <a href='/login'>Log in</a></nav></header>"
        f"<main><article><h1>{html.escape(title)}</h1>{extra}{body}</article></main>"
        "<aside><h2>Most read</h2><ul><li><a href='/x'>Ten ways to cook rice</a></li>"
        "<li><a href='/y'>Weather: rain all week</a></li></ul></aside>"
        "<footer>© 2026 Port News. All rights reserved. Privacy policy. Cookies.</footer>"
        "</body></html>"
    ).encode()


def _rss(base: str, items: list[dict[str, str]]) -> bytes:
    entries = "".join(
        "<item>"
        f"<title>{html.escape(i['title'])}</title><link>{base}{i['path']}</link>"
        f"<guid isPermaLink='false'>{i['guid']}</guid><pubDate>{i['date']}</pubDate>"
        f"<author>{i.get('author', 'desk@port.test (News desk)')}</author>"
        f"<description>{html.escape(i.get('summary', ''))}</description>"
        "</item>"
        for i in items
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Port News</title><link>{base}/</link><language>en</language>"
        f"<description>News of the port</description>{entries}</channel></rss>"
    ).encode()


def _atom(base: str) -> bytes:
    return (
        "<?xml version='1.0' encoding='utf-8'?>"
        "<feed xmlns='http://www.w3.org/2005/Atom' xml:lang='fr'><title>Nouvelles</title>"
        f"<id>{base}/atom</id><updated>2024-11-14T08:00:00Z</updated>"
        "<entry><title>Construire Hai Phong</title>"
        f"<link rel='alternate' href='{base}/fr/hai-phong'/><id>urn:uuid:fr-1</id>"
        "<updated>2024-11-14T08:00:00Z</updated><author><name>Rédaction</name></author>"
        "<summary>Le secrétaire général To Lam à Hai Phong.</summary></entry></feed>"
    ).encode()


ITEMS = [
    {
        "title": "Building Hai Phong into an international connection center",
        "path": "/news/connection-center",
        "guid": "port-1",
        "date": "Mon, 18 Nov 2024 07:00:00 GMT",
        "doc": ENGLISH[0],
    },
    {
        "title": "Standing Committee works on Resolution 45",
        "path": "/news/resolution-45",
        "guid": "port-2",
        "date": "Tue, 19 Nov 2024 09:30:00 GMT",
        "doc": ENGLISH[1],
        "summary": "The Municipal Party Standing Committee met on Resolution No.45-NQ/TW.",
    },
]


@pytest.fixture
def web() -> Iterator[WebServer]:
    with serving() as server:
        for item in ITEMS:
            server.routes[item["path"]] = Route(_page(item["doc"], item["title"]))
        server.routes["/rss"] = Route(
            _rss(server.base, ITEMS), content_type="application/rss+xml", etag='"feed-1"'
        )
        yield server


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        embedder="fake",
        llm_backend="fake",
        fetch_allow_hosts="127.0.0.1",  # the test server; nothing else inside
        fetch_host_pause_s=0.0,
    )


def _catalog(settings: Settings) -> dict[str, dict[str, object]]:
    embedder = make_embedder(settings)
    return open_index(settings, embedder.name, embedder.dim).articles()


def _subscribe(settings: Settings, url: str) -> None:
    Subscriptions.of(settings).add(url)


def test_a_first_check_indexes_every_entry_with_its_date_link_and_main_text(
    web: WebServer, settings: Settings
) -> None:
    _subscribe(settings, web.url("/rss"))
    [checked] = check_feeds(settings)
    assert (checked.added, checked.failed, checked.error) == (2, 0, ""), checked
    catalog = _catalog(settings)
    assert len(catalog) == 2
    by_link = {r["source_url"]: r for r in catalog.values()}
    first = by_link[web.url(ITEMS[0]["path"])]
    assert first["date"] == "2024-11-18" and first["title"] == ITEMS[0]["title"]
    assert first["origin"] == "feed" and first["feed"] == web.url("/rss")
    assert first["content_from"] == "page" and first["lang"] == "en"
    assert str(first["author"]).startswith("desk@port.test")
    # the site's menus and teasers are not part of the article
    deps = build_deps(settings, llm=FakeChat())
    texts = " ".join(h.text for h in article_passages(deps.index, str(first["doc_id"])))
    assert "Lach Huyen" in texts or "Hai Phong" in texts
    assert "Ten ways to cook rice" not in texts and "All rights reserved" not in texts
    sub = Subscriptions.of(settings).load()[0]  # a new reader: the state was stored
    assert sub.articles == 2 and sub.last_checked and not sub.last_error
    assert sub.title == "Port News" and sub.etag == '"feed-1"'


def test_a_second_check_asks_conditionally_and_writes_nothing(
    web: WebServer, settings: Settings
) -> None:
    _subscribe(settings, web.url("/rss"))
    check_feeds(settings)
    versions = {d: r["version"] for d, r in _catalog(settings).items()}
    fetched = len(web.requests)
    [again] = check_feeds(settings)
    assert again.not_modified and not again.error
    assert web.requests[-1].headers.get("If-None-Match") == '"feed-1"'
    assert len(web.requests) == fetched + 1  # the feed only: no article page again
    assert {d: r["version"] for d, r in _catalog(settings).items()} == versions
    # a feed that changed (new ETag) but whose entries did not: still no page fetched
    web.routes["/rss"].etag = '"feed-2"'
    [third] = check_feeds(settings)
    assert (third.added, third.updated, third.unchanged) == (0, 0, 2)
    assert len(web.requests) == fetched + 2


def test_an_entry_edited_upstream_replaces_its_article(web: WebServer, settings: Settings) -> None:
    _subscribe(settings, web.url("/rss"))
    check_feeds(settings)
    doc_id = web_id("port-2")
    before = _catalog(settings)[doc_id]
    edited = [dict(ITEMS[0]), {**ITEMS[1], "date": "Wed, 20 Nov 2024 10:00:00 GMT"}]
    web.routes["/rss"] = Route(_rss(web.base, edited), etag='"feed-2"')
    correction = "<p>Correction: the meeting was held on Wednesday in Hai Phong.</p>"
    web.routes[ITEMS[1]["path"]] = Route(_page(ITEMS[1]["doc"], ITEMS[1]["title"], correction))
    [checked] = check_feeds(settings)
    assert (checked.updated, checked.unchanged) == (1, 1), checked
    after = _catalog(settings)
    assert len(after) == 2 and after[doc_id]["version"] != before["version"]
    assert after[doc_id]["date"] == "2024-11-20"
    deps = build_deps(settings, llm=FakeChat())
    assert any("Correction" in h.text for h in article_passages(deps.index, doc_id))


def test_an_entry_gone_from_the_feed_keeps_its_article_unless_pruned(
    web: WebServer, settings: Settings
) -> None:
    _subscribe(settings, web.url("/rss"))
    check_feeds(settings)
    web.routes["/rss"] = Route(_rss(web.base, ITEMS[:1]), etag='"short"')
    [checked] = check_feeds(settings)
    assert checked.removed == 0 and len(_catalog(settings)) == 2
    web.routes["/rss"].etag = '"short-2"'
    [pruned] = check_feeds(settings, prune=True)
    assert pruned.removed == 1 and set(_catalog(settings)) == {web_id("port-1")}


def test_a_page_that_cannot_be_had_falls_back_to_the_entry_s_content_and_says_so(
    web: WebServer, settings: Settings
) -> None:
    del web.routes[ITEMS[1]["path"]]  # 404
    _subscribe(settings, web.url("/rss"))
    [checked] = check_feeds(settings)
    assert checked.added == 2 and checked.from_entry == 1
    record = _catalog(settings)[web_id("port-2")]
    assert record["content_from"] == "feed entry"
    deps = build_deps(settings, llm=FakeChat())
    [passage] = article_passages(deps.index, web_id("port-2"))
    assert "Resolution No.45-NQ/TW" in passage.text
    shown = article_page(deps.index, web_id("port-2"))  # the Library says where it came from
    assert "from a feed (its entry&#x27;s own text: the page could not be had)" in shown


def test_an_atom_feed_gives_its_language_and_entries(web: WebServer, settings: Settings) -> None:
    web.routes["/atom"] = Route(_atom(web.base), content_type="application/atom+xml")
    web.routes["/fr/hai-phong"] = Route(_page(FRENCH, "Construire Hai Phong"))
    _subscribe(settings, web.url("/atom"))
    [checked] = check_feeds(settings)
    assert checked.added == 1, checked
    [record] = _catalog(settings).values()
    assert record["lang"] == "fr" and record["date"] == "2024-11-14"
    assert record["author"] == "Rédaction" and record["doc_id"] == web_id("urn:uuid:fr-1")


def test_what_is_not_a_feed_gets_a_clear_error_and_indexes_nothing(
    web: WebServer, settings: Settings
) -> None:
    web.routes["/home"] = Route(
        b"<!doctype html><html><head><link rel='alternate' type='application/rss+xml' "
        b"href='/rss'></head><body>Port News</body></html>"
    )
    broken = b"<rss version='2.0'><channel><item><title>cut"
    web.routes["/broken"] = Route(broken, content_type="application/xml")
    with pytest.raises(FetchError, match=r"not a feed but an HTML page; it names a feed at .*/rss"):
        parse_feed(web.routes["/home"].body, web.url("/home"))  # type: ignore[arg-type]
    for path in ("/home", "/broken", "/missing"):
        _subscribe(settings, web.url(path))
    results = {r.url: r for r in check_feeds(settings)}
    assert "not a feed but an HTML page" in results[web.url("/home")].error
    assert "not a feed" in results[web.url("/broken")].error
    assert results[web.url("/missing")].error == "the site answered 404"
    assert _catalog(settings) == {}
    errors = {s.url: s.last_error for s in Subscriptions.of(settings).load()}
    assert errors[web.url("/missing")] == "the site answered 404"


def test_a_feed_on_an_address_inside_is_refused_unless_allowed(
    web: WebServer, settings: Settings
) -> None:
    closed = settings.model_copy(update={"fetch_allow_hosts": ""})
    _subscribe(closed, web.url("/rss"))
    [checked] = check_feeds(closed)
    assert "loopback" in checked.error and "FETCH_ALLOW_HOSTS" in checked.error
    assert web.requests == [] and _catalog(closed) == {}


def test_a_page_added_twice_or_through_another_address_is_one_article(
    web: WebServer, settings: Settings
) -> None:
    path = ITEMS[0]["path"]
    web.routes["/short"] = Route(status=302, headers={"Location": path})
    first = add_urls([web.url(path)], settings)
    assert [a.status for a in first] == ["added"]
    again = add_urls([web.url(path) + "?utm_source=feed", web.url("/short")], settings)
    assert [a.status for a in again] == ["unchanged", "unchanged"]
    assert {a.doc_id for a in [*first, *again]} == {first[0].doc_id}
    [record] = _catalog(settings).values()
    assert record["origin"] == "url" and record["source_url"] == web.url(path)


def test_a_question_about_a_feed_s_article_cites_it_with_its_link(
    web: WebServer, settings: Settings
) -> None:
    _subscribe(settings, web.url("/rss"))
    check_feeds(settings)
    doc_id = web_id("port-1")
    llm = FakeChat(["Hai Phong is to become an international connection center [1]."])
    asked = Question("What is Hai Phong to become?", filters=Filters(doc_ids=[doc_id]))
    result = answer(build_deps(settings, llm=llm), asked)
    assert result.citations and result.citations[0].doc_id == doc_id
    assert result.citations[0].source_url == web.url(ITEMS[0]["path"])


def test_pruning_a_folder_leaves_the_articles_from_the_web_alone(
    web: WebServer, settings: Settings, tmp_path: Path
) -> None:
    add_urls([web.url(ITEMS[0]["path"])], settings)
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "note.txt").write_text("Hai Phong opened a new bridge over the Cam river today.")
    ingest_paths([folder], settings, prune=True, progress=False)
    assert set(_catalog(settings)) == {web_id(web.url(ITEMS[0]["path"])), "note"}


def test_the_command_line_subscribes_lists_checks_and_unsubscribes(
    web: WebServer,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in {
        "INDEX_DIR": str(settings.index_dir),
        "POSTINGS_DIR": str(settings.postings_dir),
        "EMBEDDER": "fake",
        "LLM_BACKEND": "fake",
        "FETCH_ALLOW_HOSTS": "127.0.0.1",
        "FETCH_HOST_PAUSE_S": "0",
    }.items():
        monkeypatch.setenv(name, value)
    assert ingest_main(["--feed", web.url("/rss")]) == 0
    assert "2 added" in capsys.readouterr().out
    assert ingest_main(["--feeds-list"]) == 0
    listed = capsys.readouterr().out
    assert web.url("/rss") in listed and "2 articles" in listed
    assert ingest_main(["--feeds"]) == 0
    assert "not modified" in capsys.readouterr().out
    assert ingest_main(["--url", "http://169.254.169.254/latest/meta-data/"]) == 1
    assert "link-local" in capsys.readouterr().out
    assert ingest_main(["--unfeed", web.url("/rss")]) == 0
    assert ingest_main(["--feeds-list"]) == 0
    assert "0 feeds" in capsys.readouterr().out
    assert len(_catalog(settings)) == 2  # unsubscribing keeps the articles


def test_ingest_watch_checks_the_feeds_every_poll_interval(
    web: WebServer, settings: Settings, tmp_path: Path
) -> None:
    _subscribe(settings, web.url("/rss"))
    folder = tmp_path / "incoming"
    folder.mkdir()
    env = {
        **os.environ,
        "INDEX_DIR": str(settings.index_dir),
        "POSTINGS_DIR": str(settings.postings_dir),
        "EMBEDDER": "fake",
        "FETCH_ALLOW_HOSTS": "127.0.0.1",
        "FETCH_HOST_PAUSE_S": "0",
        "FEED_POLL_MINUTES": "0.01",  # every 0.6 s
    }
    process = start_watch([str(folder)], env)
    seen: list[str] = []
    try:
        lines = _lines(process)
        assert "Checking 1 feed every 0.01 minutes" in _until(lines, seen, "Checking")
        assert "2 added" in _until(lines, seen, "checked " + web.url("/rss"))
        edited = [dict(ITEMS[0]), {**ITEMS[1], "date": "Wed, 20 Nov 2024 10:00:00 GMT"}]
        web.routes["/rss"] = Route(_rss(web.base, edited), etag='"feed-2"')
        _until(lines, seen, "1 updated")
        _until(lines, seen, "not modified")  # the next check asks with the new ETag
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert web.requests[-1].headers.get("If-None-Match") == '"feed-2"'
