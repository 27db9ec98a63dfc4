"""Index article files into Chroma.

    python -m ingest                   # the articles in DATA_DIR (data/articles/)
    python -m ingest PATH [PATH ...]   # files or folders (.txt .md .html .htm .pdf)
    python -m ingest --prune           # also drop indexed articles whose file is gone
    python -m ingest --remove ID [ID ...]  # take articles out of the index by id
    python -m ingest --list            # what the index holds
    python -m ingest --check           # verify catalog and passages agree
    python -m ingest --watch [PATH ...]  # keep indexing files as they land or change (Ctrl-C)

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

    missing = [p for p in paths if not p.is_dir()]
    if missing:
        raise BotError(f"--watch needs folders; not a folder: {', '.join(map(str, missing))}")

    def say(event: watch.Event) -> None:
        print(f"{datetime.now():%H:%M:%S} {event.line()}", flush=True)

    watcher = watch.Watcher(
        paths,
        settings,
        settle_s=watch.SETTLE_S if settle is None else settle,
        prune=prune,
        on_event=say,
    )
    print(
        f"Watching {', '.join(map(str, paths))}: files that land or change are indexed "
        "once they stop changing (Ctrl-C stops).",
        flush=True,
    )
    try:
        watcher.run(threading.Event(), watch.INTERVAL_S if interval is None else interval)
    except KeyboardInterrupt:
        print("Stopped.", flush=True)
    return 0


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
