"""Index article files into Chroma.

    python -m ingest                   # the articles in DATA_DIR (data/articles/)
    python -m ingest PATH [PATH ...]   # files or folders (.txt .md .html .htm .pdf)
    python -m ingest --prune           # also drop indexed articles whose file is gone
    python -m ingest --remove ID [ID ...]  # take articles out of the index by id
    python -m ingest --list            # what the index holds
    python -m ingest --check           # verify catalog and passages agree
    python -m ingest --watch [PATH ...]  # keep indexing files as they land or change (Ctrl-C),
                                       # and check the feeds every FEED_POLL_MINUTES
    python -m ingest --url URL [--url URL ...]   # add pages by their address
    python -m ingest --feed URL [--feed URL ...] # subscribe to feeds, and check them now
    python -m ingest --feeds [--prune]           # check every feed once (--prune: entries gone
                                                 # from a feed take their article with them)
    python -m ingest --feeds-list                # the subscriptions, their last check and error
    python -m ingest --unfeed URL                # unsubscribe (the articles stay)

The exit code is non-zero only when there were files and none could be ingested.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bot.errors import BotError
from bot.settings import Settings
from bot.text import redact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default DATA_DIR)")
    parser.add_argument(
        "--prune", action="store_true", help="remove indexed articles not found among PATHS"
    )
    parser.add_argument(
        "--remove",
        nargs="+",
        metavar="ID",
        default=[],
        help="take these articles (ids: see --list) out of the index",
    )
    parser.add_argument("--list", action="store_true", help="list the indexed articles and exit")
    parser.add_argument("--check", action="store_true", help="check the index and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--watch",
        action="store_true",
        help="keep running: index files that land or change under PATHS, a "
        "line per article (--prune: deleted files' articles go)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=None,
        metavar="S",
        help="--watch: seconds a file must rest (default 2)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        metavar="S",
        help="--watch: seconds between scans (default 1)",
    )
    web = parser.add_argument_group("pages and feeds (fetched safely: FETCH_ALLOW_HOSTS)")
    web.add_argument("--url", action="append", default=[], help="add the page at URL")
    web.add_argument("--feed", action="append", default=[], help="subscribe to the feed at URL")
    web.add_argument("--feeds", action="store_true", help="check every feed subscribed to")
    web.add_argument("--feeds-list", action="store_true", help="list the feeds subscribed to")
    web.add_argument("--unfeed", action="append", default=[], metavar="URL", help="unsubscribe")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a bad PDF's failure line says enough
    settings = Settings()
    redact.install(settings)
    try:
        if args.list or args.check:
            return _inspect(settings, check=args.check)
        if args.remove:
            from ingest.pipeline import remove_articles

            summary = remove_articles(args.remove, settings)
            print(summary.report())
            return 0 if summary.counts["removed"] else 1
        if args.url or args.feed or args.feeds or args.feeds_list or args.unfeed:
            return _web(settings, args)
        paths = args.paths or [settings.data_dir]
        if args.watch:
            return _watch(settings, paths, args.prune, args.settle, args.interval)
        return _ingest(settings, paths, args.prune, not args.quiet)
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _ingest(settings: Settings, paths: list[Path], prune: bool, progress: bool) -> int:
    from ingest.pipeline import ingest_paths

    missing = [p for p in paths if not p.exists()]
    if missing:
        raise BotError(f"No such file or folder: {', '.join(map(str, missing))}")
    summary = ingest_paths(paths, settings, prune=prune, progress=progress)
    if not summary.results:
        print(f"No article files found in {', '.join(map(str, paths))}.", file=sys.stderr)
        return 1
    print(summary.report())
    return 0 if summary.ok else 1


def _watch(
    settings: Settings, paths: list[Path], prune: bool, settle: float | None, interval: float | None
) -> int:
    import threading
    from datetime import datetime

    from ingest import watch
    from ingest.feeds import Subscriptions, check_feeds, poll

    missing = [p for p in paths if not p.is_dir()]
    if missing:
        raise BotError(f"--watch needs folders; not a folder: {', '.join(map(str, missing))}")

    def say(event: watch.Event) -> None:
        print(f"{datetime.now():%H:%M:%S} {event.line()}", flush=True)

    lock = threading.Lock()  # one writer at a time: the folder's files or the feeds
    watcher = watch.Watcher(
        paths,
        settings,
        settle_s=watch.SETTLE_S if settle is None else settle,
        prune=prune,
        on_event=say,
        lock=lock,
    )
    stop = threading.Event()
    store = Subscriptions.of(settings)

    def check(urls: list[str]) -> None:
        checked = check_feeds(
            settings, urls, subscriptions=store, embedder=watcher.embedder, writing=lock
        )
        for result in checked:
            print(f"{datetime.now():%H:%M:%S} {result.line().strip()}", flush=True)

    feeds = threading.Thread(
        target=poll,
        args=(store, settings.feed_poll_minutes, check, stop),
        name="feeds",
        daemon=True,
    )
    print(
        f"Watching {', '.join(map(str, paths))}: files that land or change are indexed "
        "once they stop changing (Ctrl-C stops).",
        flush=True,
    )
    subscribed = len(store.load())
    if subscribed:
        print(
            f"Checking {subscribed} feed{'' if subscribed == 1 else 's'} every "
            f"{settings.feed_poll_minutes:g} minutes.",
            flush=True,
        )
    feeds.start()
    try:
        watcher.run(stop, watch.INTERVAL_S if interval is None else interval)
    except KeyboardInterrupt:
        print("Stopped.", flush=True)
    finally:
        stop.set()
    return 0


def _web(settings: Settings, args: argparse.Namespace) -> int:
    """--url, --feed, --feeds, --feeds-list, --unfeed: 1 when something asked for failed."""
    from ingest.feeds import Subscriptions, check_feeds
    from ingest.web import add_urls

    store = Subscriptions.of(settings)
    failed = False
    for url in args.unfeed:
        removed = store.remove(url)
        print(f"  {'unsubscribed' if removed else 'not subscribed'} {url}")
        failed |= not removed
    if args.url:
        results = add_urls(args.url, settings)
        for added in results:
            print(added.line())
        failed |= any(a.status == "failed" for a in results)
    for url in args.feed:
        sub = store.add(url)
        print(f"  subscribed {sub.url}")
    if args.feed or args.feeds:
        urls = None if args.feeds else args.feed
        for checked in check_feeds(settings, urls, prune=args.prune, subscriptions=store):
            print(checked.line(), flush=True)
            failed |= bool(checked.error)
    if args.feeds_list:
        subs = store.load()
        for sub in subs:
            print(sub.line())
        print(f"{len(subs)} feeds")
    return 1 if failed else 0


def _inspect(settings: Settings, check: bool) -> int:
    from bot.index.store import open_index
    from bot.models.embeddings import make_embedder

    embedder = make_embedder(settings)
    index = open_index(settings, embedder.name, embedder.dim)
    if check:
        from bot.index import search_state

        problems = index.problems() + search_state.problems(index)
        for problem in problems:
            print(problem)
        print("index is consistent" if not problems else f"{len(problems)} problems")
        return 1 if problems else 0
    articles = sorted(index.articles().items())
    print(f"{'id':<24} {'lang':<4} {'date':<10} {'passages':>8}  title")
    for doc_id, rec in articles:
        print(
            f"{doc_id:<24} {rec.get('lang', ''):<4} {rec.get('date', '') or '-':<10} "
            f"{rec.get('n_passages', 0):>8}  {rec.get('title', '')}"
        )
    print(f"{len(articles)} articles, {index.count()} passages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
