"""Safe fetching (ingest.fetch) against a real HTTP server on 127.0.0.1: what users type must
not reach addresses inside the network, on any redirect hop, whatever a DNS name says."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ingest.fetch import PAGE_TYPES, Allowed, Fetcher, FetchError, resolve
from tests.web_server import Route, WebServer, serving

PAGE = b"<html><body><p>Hai Phong news.</p></body></html>"


@pytest.fixture
def web() -> Iterator[WebServer]:
    with serving() as server:
        server.routes["/a"] = Route(PAGE, etag='"v1"')
        yield server


def _fetcher(allow: str = "", resolver: dict[str, str] | None = None, **limits: float) -> Fetcher:
    names = resolver or {}

    def lookup(host: str, port: int) -> list[str]:
        return [names[host]] if host in names else resolve(host, port)

    return Fetcher(Allowed.parse(allow), resolver=lookup, pause_s=0.0, **limits)  # type: ignore[arg-type]


def test_the_machine_s_own_addresses_are_refused_unless_allowed(web: WebServer) -> None:
    for url in (web.url("/a"), f"http://localhost:{web.port}/a", f"http://[::1]:{web.port}/a"):
        with pytest.raises(FetchError, match=r"loopback.*FETCH_ALLOW_HOSTS"):
            _fetcher().get(url, PAGE_TYPES)
    assert web.requests == []  # refused before any connection
    page = _fetcher("127.0.0.1").get(web.url("/a"), PAGE_TYPES)
    assert page.status == 200 and page.body == PAGE and page.etag == '"v1"'
    assert web.requests[-1].headers["User-Agent"].startswith("newsqa/")


def test_only_http_and_https_are_fetched() -> None:
    for url in ("file:///etc/passwd", "ftp://example.org/feed", "gopher://x", "javascript:x"):
        with pytest.raises(FetchError, match="only http and https"):
            _fetcher().get(url, PAGE_TYPES)


def test_a_name_that_resolves_inside_is_refused_and_the_checked_address_is_the_one_used() -> None:
    inside = {"intranet.test": "10.1.2.3", "meta.test": "169.254.169.254", "v6.test": "fd00::1"}
    for host, why in (("intranet", "private"), ("meta", "link-local"), ("v6", "private")):
        with pytest.raises(FetchError, match=why):
            _fetcher(resolver=inside).get(f"http://{host}.test/feed", PAGE_TYPES)
    mapped = {"mapped.test": "::ffff:127.0.0.1"}
    with pytest.raises(FetchError, match="loopback"):
        _fetcher(resolver=mapped).get("http://mapped.test/", PAGE_TYPES)
    # a listed network (or host) is allowed, and the connection goes to the checked address
    target, host = _fetcher("10.1.0.0/16", inside).check("http://intranet.test:8080/feed")
    assert host == "intranet.test" and target.host == "10.1.2.3" and target.port == 8080
    assert _fetcher("intranet.test", inside).check("http://intranet.test/")[0].host == "10.1.2.3"


def test_every_redirect_hop_is_checked(web: WebServer) -> None:
    names = {"news.test": "127.0.0.1"}  # the test server, allowed by its name only
    fetcher = _fetcher("news.test", names)
    web.routes["/moved"] = Route(status=301, headers={"Location": "/a"})
    page = fetcher.get(f"http://news.test:{web.port}/moved", PAGE_TYPES)
    assert page.body == PAGE and page.final_url == f"http://news.test:{web.port}/a"
    assert web.requests[-1].headers["Host"] == f"news.test:{web.port}"
    web.routes["/to-loopback"] = Route(status=302, headers={"Location": web.url("/a")})
    web.routes["/to-metadata"] = Route(
        status=307, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    for path, why in (("/to-loopback", "loopback"), ("/to-metadata", "link-local")):
        with pytest.raises(FetchError, match=why):
            fetcher.get(f"http://news.test:{web.port}{path}", PAGE_TYPES)
    web.routes["/loop"] = Route(status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetcher.get(f"http://news.test:{web.port}/loop", PAGE_TYPES)
    assert web.paths().count("/loop") == 6


def test_a_page_larger_than_the_limit_is_cut_off_and_refused(web: WebServer) -> None:
    sent = []

    def fifty_mb() -> Iterator[bytes]:
        for _ in range(50):
            sent.append(1)
            yield b"x" * 2**20

    web.routes["/huge"] = Route(fifty_mb)  # streamed, no Content-Length
    with pytest.raises(FetchError, match=r"larger than 10 MB.*FETCH_MAX_MB"):
        _fetcher("127.0.0.1").get(web.url("/huge"), PAGE_TYPES)
    assert len(sent) < 50  # the client stopped reading
    web.routes["/declared"] = Route(b"x" * (2 * 2**20))
    with pytest.raises(FetchError, match="larger than 1 MB"):
        _fetcher("127.0.0.1", max_bytes=2**20).get(web.url("/declared"), PAGE_TYPES)


def test_wrong_content_type_errors_and_slow_sites_are_refused_with_the_reason(
    web: WebServer,
) -> None:
    fetcher = _fetcher("127.0.0.1", timeout_s=0.5)
    web.routes["/logo"] = Route(b"\x89PNG", content_type="image/png")
    with pytest.raises(FetchError, match="sent image/png"):
        fetcher.get(web.url("/logo"), PAGE_TYPES)
    with pytest.raises(FetchError, match="the site answered 404"):
        fetcher.get(web.url("/gone"), PAGE_TYPES)
    stalled = threading.Event()

    def slow() -> Iterator[bytes]:
        yield b"<html>"
        stalled.wait(5)  # released when the test ends
        yield b"</html>"

    web.routes["/slow"] = Route(slow)
    try:
        with pytest.raises(FetchError, match=r"timed out after 0.5 s"):
            fetcher.get(web.url("/slow"), PAGE_TYPES)
    finally:
        stalled.set()


def test_one_request_per_site_at_a_time(web: WebServer) -> None:
    inside, most, lock = [0], [0], threading.Lock()

    def counted() -> Iterator[bytes]:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)  # holds the request open; what is asserted is the count
        with lock:
            inside[0] -= 1
        yield PAGE

    web.routes["/counted"] = Route(counted)
    fetcher = _fetcher("127.0.0.1")
    threads = [
        threading.Thread(target=fetcher.get, args=(web.url("/counted"), PAGE_TYPES))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert web.paths().count("/counted") == 4 and most[0] == 1


def test_a_conditional_request_comes_back_not_modified(web: WebServer) -> None:
    fetcher = _fetcher("127.0.0.1")
    first = fetcher.get(web.url("/a"), PAGE_TYPES)
    again = fetcher.get(web.url("/a"), PAGE_TYPES, {"If-None-Match": first.etag})
    assert again.not_modified and again.body == b""
    assert web.requests[-1].headers["If-None-Match"] == '"v1"'
