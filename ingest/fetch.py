"""Fetching the pages and feeds users add, safely: the app fetches whatever address is typed
into it, so it must not become a way into the network it runs in.

    fetcher = Fetcher.from_settings(settings)
    page = fetcher.get("https://example.org/news/1", PAGE_TYPES)      # -> Fetched

Only http and https. Every hop of a redirect is checked on the addresses its host resolves
to, and the connection goes to the very address that was checked (a DNS name that resolves
inside, or changes its answer between the check and the connection, gets nowhere): loopback,
private, link-local (the cloud metadata service), multicast and reserved addresses are refused
unless FETCH_ALLOW_HOSTS lists the host or its network. A response is cut off at FETCH_MAX_MB
and FETCH_TIMEOUT_S, must have an expected content type, and is kept only whole. One request
per host at a time, FETCH_HOST_PAUSE_S apart. Proxies from the environment are not used: a
proxy would hide the address that is checked.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from bot.errors import BotError
from bot.settings import Settings

USER_AGENT = "newsqa/0.1 (news question answering; fetches the pages and feeds its users add)"
PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "text/plain",  # feeds are often served as one of these two
    "application/octet-stream",
)
_REDIRECTS = (301, 302, 303, 307, 308)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class FetchError(BotError):
    """An address that is not fetched, or a fetch that failed; the message says why."""


@dataclass(frozen=True)
class Fetched:
    url: str  # as asked
    final_url: str  # after redirects
    status: int  # 200, or 304 (not modified: no body)
    content_type: str  # without parameters, lower case
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""
    charset: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (FetchError when it resolves to none)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"no such host: {host} ({exc})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in found))


@dataclass(frozen=True)
class Allowed:
    """FETCH_ALLOW_HOSTS: host names and networks fetched although not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Allowed:
        hosts, networks = set(), []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def address(self, ip: IPAddress) -> bool:
        return any(ip in net for net in self.networks if net.version == ip.version)


def refused_because(ip: IPAddress) -> str:
    """Why an address is not fetched by default ("" when it is public)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return refused_because(ip.ipv4_mapped)
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "not a public address"
    return ""


@dataclass
class _Turns:
    """At most one request per host at a time, `pause` seconds after the previous one ended."""

    pause: float
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _hosts: dict[str, tuple[threading.Lock, list[float]]] = field(default_factory=dict)

    @contextmanager
    def turn(self, host: str) -> Iterator[None]:
        with self._lock:
            lock, last = self._hosts.setdefault(host, (threading.Lock(), [0.0]))
        with lock:
            wait = last[0] + self.pause - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                yield
            finally:
                last[0] = time.monotonic()


class Fetcher:
    """GET requests made safe for addresses users type (module docstring)."""

    def __init__(
        self,
        allowed: Allowed | None = None,
        max_bytes: int = 10 * 2**20,
        timeout_s: float = 20.0,
        max_redirects: int = 5,
        pause_s: float = 1.0,
        resolver: Resolver = resolve,
    ) -> None:
        self.allowed = allowed or Allowed()
        self.max_bytes, self.timeout_s, self.max_redirects = max_bytes, timeout_s, max_redirects
        self.resolver = resolver
        self._turns = _Turns(pause_s)
        self._client = httpx.Client(
            trust_env=False, follow_redirects=False, timeout=httpx.Timeout(timeout_s)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Fetcher:
        return cls(
            Allowed.parse(settings.fetch_allow_hosts),
            int(settings.fetch_max_mb * 2**20),
            settings.fetch_timeout_s,
            settings.fetch_max_redirects,
            settings.fetch_host_pause_s,
        )

    def close(self) -> None:
        self._client.close()

    def get(
        self, url: str, accept: Sequence[str], headers: dict[str, str] | None = None
    ) -> Fetched:
        """The response to a GET of `url`, redirects followed (each hop checked); FetchError
        with the reason when it is refused or fails. `headers`: conditional ones (a 304
        comes back as not modified)."""
        current, hops = url.strip(), 0
        while True:
            response = self._one(current, headers or {}, accept)
            if isinstance(response, Fetched):
                return dataclasses.replace(response, url=url, final_url=current)
            hops += 1
            if hops > self.max_redirects:
                raise FetchError(
                    f"{url}: more than {self.max_redirects} redirects (FETCH_MAX_REDIRECTS)"
                )
            current = response

    def check(self, url: str) -> tuple[httpx.URL, str]:
        """The URL to connect to (its host replaced by the checked address) and the host name;
        FetchError when the address is not fetched."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise FetchError(f"{url}: only http and https addresses are fetched")
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise FetchError(f"{url}: not a valid address ({exc})") from None
        host = target.host
        if not host:
            raise FetchError(f"{url}: the address names no host")
        port = target.port or (443 if target.scheme == "https" else 80)
        addresses = self.resolver(host, port)
        if not addresses:
            raise FetchError(f"no such host: {host}")
        if not self.allowed.host(host):
            for address in addresses:
                ip = ipaddress.ip_address(address.split("%", 1)[0])
                why = refused_because(ip)
                if why and not self.allowed.address(ip):
                    shown = host if host == address else f"{host} ({address})"
                    raise FetchError(
                        f"{url}: {shown} is {why}, which is not fetched; list it in "
                        "FETCH_ALLOW_HOSTS to allow it (an intranet feed)"
                    )
        return target.copy_with(host=addresses[0].split("%", 1)[0]), host

    def _one(self, url: str, headers: dict[str, str], accept: Sequence[str]) -> Fetched | str:
        """One hop: the response, or the address it redirects to."""
        target, host = self.check(url)
        name = httpx.URL(url)
        sent = {
            "Host": name.netloc.decode("ascii"),
            "User-Agent": USER_AGENT,
            "Accept": ", ".join(accept) + ", */*;q=0.1",
            "Accept-Encoding": "gzip, deflate",
            **headers,
        }
        extensions = {"sni_hostname": host} if name.scheme == "https" else {}
        started = time.monotonic()
        with self._turns.turn(host):
            try:
                request = self._client.build_request(
                    "GET", target, headers=sent, extensions=extensions
                )
                response = self._client.send(request, stream=True)
            except httpx.TimeoutException:
                raise FetchError(self._timed_out(url)) from None
            except httpx.HTTPError as exc:
                raise FetchError(f"{url}: could not connect to {host} ({exc})") from None
            try:
                return self._read(url, response, accept, started)
            finally:
                response.close()

    def _read(
        self, url: str, response: httpx.Response, accept: Sequence[str], started: float
    ) -> Fetched | str:
        status = response.status_code
        if status in _REDIRECTS and response.headers.get("location"):
            return urljoin(url, response.headers["location"])
        if status == 304:
            return Fetched(url, url, 304, "", b"", *_validators(response))
        if status >= 400:
            raise FetchError(f"{url}: the site answered {status}")
        if status != 200:
            raise FetchError(f"{url}: the site answered {status}, not a page")
        kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind and kind not in accept:
            raise FetchError(
                f"{url}: the site sent {kind}, where {', '.join(accept[:3])} was expected"
            )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(self._too_large(url))
        body = bytearray()
        try:
            for chunk in response.iter_bytes():  # decoded: the limit is on what is kept
                body += chunk
                if len(body) > self.max_bytes:
                    raise FetchError(self._too_large(url))
                if time.monotonic() - started > self.timeout_s:
                    raise FetchError(self._timed_out(url))
        except httpx.TimeoutException:
            raise FetchError(self._timed_out(url)) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: the connection broke off ({exc})") from None
        charset = response.charset_encoding or ""
        return Fetched(url, url, 200, kind, bytes(body), *_validators(response), charset)

    def _timed_out(self, url: str) -> str:
        return f"{url}: timed out after {self.timeout_s:g} s (FETCH_TIMEOUT_S)"

    def _too_large(self, url: str) -> str:
        return (
            f"{url}: larger than {self.max_bytes / 2**20:g} MB, not fetched whole "
            "(FETCH_MAX_MB raises the limit)"
        )


def _validators(response: httpx.Response) -> tuple[str, str]:
    return response.headers.get("etag", ""), response.headers.get("last-modified", "")
