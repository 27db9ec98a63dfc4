"""The Backend brings the index and the model up in the background and serves the UI: status,
answers' highlights, the library and uploads."""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.answering.pivot import stored_translation
from bot.deps import Deps, build_deps
from bot.errors import BotError, unexpected
from bot.index.errors import IndexUnavailable
from bot.models.embeddings import Embedder, make_embedder
from bot.models.llm import ChatModel
from bot.ratings import FeedbackLog
from bot.settings import Settings
from bot.warmup import Warmup
from ingest.feeds import Checked, Subscriptions, check_feeds, poll
from ingest.fetch import Fetcher
from ingest.pipeline import Summary, ingest_paths
from ingest.readers import find_files
from ingest.watch import Event, Watcher
from ingest.web import add_urls
from webui.library import article_page, place, plan_uploads, take_back, upload_report
from webui.serving import AnswerQueue, answer_concurrency
from webui.translate import Translations

log = logging.getLogger("newsqa.app")
WAIT_S = 900  # longest a question waits for the index and model to get ready
RETRY_S = 5.0  # seconds between attempts to reach a Chroma server that is down at start
ERROR_POLL_S = 0.2  # how often a waiting question looks for a start-up problem


class Backend:
    """Brings the index and the model up in the background; the UI asks it for status."""

    def __init__(
        self, settings: Settings, llm: ChatModel | None = None, embedder: Embedder | None = None
    ) -> None:
        self.settings = settings
        self._llm, self._embedder = llm, embedder
        self.deps: Deps | None = None
        self.stage = "Starting…"
        self.counts = (0, 0)  # articles, passages in the index
        self.error = ""
        self.notes: list[str] = []
        self.model_state = "waiting for the index"
        self.ready = threading.Event()  # index open: retrieval works
        self.settled = threading.Event()  # nothing more will happen in the background
        self._upload_lock = threading.Lock()
        self._closing = threading.Event()
        self.warmup: Warmup | None = None  # articles read in advance by the embedded LLM
        # every answer written, from the page, /ask or the OpenAI-compatible API, takes a slot
        self.answers = AnswerQueue(answer_concurrency(settings), settings.ui_queue_size)
        self.feedback = FeedbackLog(settings.feedback_path)  # the answers users rated
        self.translations = Translations()  # evidence sentences in the reader's language
        self.feeds = Subscriptions.of(settings)  # the feeds subscribed to (ingest.feeds)
        self.fetcher = Fetcher.from_settings(settings)  # pages and feeds, fetched safely
        self.feed_state = ""  # "checking 3 feeds" while it does
        self._feeds_due = threading.Event()  # a feed was added: check the schedule again
        self._checking = threading.Lock()

    # -- start-up --------------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.prepare, name="prepare", daemon=True)
        thread.start()
        return thread

    def prepare(self) -> None:
        try:
            self.stage = "Loading the embedding model…"
            embedder = self._embedder or make_embedder(self.settings)
            watcher = self._watcher(embedder)
            summary = self._check_library(embedder)
            log.info("index check:\n%s", summary.report())
            self.notes = [f"{r.name}: {r.reason}" for r in summary.results if r.status == "failed"]
            if not summary.total_articles:
                self.notes.append("The library is empty: add articles in the Library tab.")
            self.deps = build_deps(self.settings, self._llm, embedder)
            self._counted(summary.total_articles, summary.total_passages)
            self.ready.set()
            if watcher is not None:
                threading.Thread(
                    target=watcher.run, args=(self._closing,), name="watch", daemon=True
                ).start()
            threading.Thread(target=self._poll_feeds, name="feeds", daemon=True).start()
            self.model_state = "starting (the first answer waits for it)"
            self.deps.llm.start()
            self.model_state = "ready"
            self.warmup = Warmup(self.deps)
            if self.settings.warm_articles:
                self.warmup.start()  # after the UI is up; questions go first
        except BotError as exc:
            self._failed(str(exc))
        except Exception as exc:
            log.exception("start-up failed")
            self._failed(f"start-up failed ({type(exc).__name__}: {exc}); see the server log.")
        finally:
            self.settled.set()

    def _check_library(self, embedder: Embedder) -> Summary:
        """Bring the index in line with DATA_DIR; while the Chroma server is unreachable, say
        so and try again every RETRY_S seconds."""
        while True:
            self.stage = "Checking the library for new and changed articles…"
            try:
                summary = ingest_paths(
                    [self.settings.data_dir],
                    self.settings,
                    embedder,
                    progress=False,
                    on_file=self._indexing,
                )
            except IndexUnavailable as exc:
                self.error = f"{exc} Trying again every {RETRY_S:.0f} s."
                log.warning("%s", exc)
                if self._closing.wait(RETRY_S):
                    raise
                continue
            self.error = ""
            return summary

    def _watcher(self, embedder: Embedder) -> Watcher | None:
        """With WATCH_DATA_DIR, what lands in DATA_DIR from now on is indexed as it settles."""
        if not self.settings.watch_data_dir:
            return None
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        watcher = Watcher(
            [self.settings.data_dir],
            self.settings,
            embedder,
            on_event=self._watched,
            lock=self._upload_lock,
        )
        watcher.prime()  # the start-up check that follows indexes what is there now
        return watcher

    def _watched(self, event: Event) -> None:
        log.info("watch: %s", event.line())
        if event.status in ("failed", "error"):
            self.notes = [*self.notes, f"{event.name or 'index'}: {event.reason}"][-5:]
        elif event.status != "waiting" and self.deps is not None:
            index = self.deps.index
            self._counted(index.count_articles(), index.count())
            if self.warmup is not None:
                self.warmup.kick()

    def _counted(self, articles: int, passages: int) -> None:
        self.counts = (articles, passages)
        self.stage = f"{articles} articles, {passages} passages"

    def _indexing(self, i: int, n: int, path: Path) -> None:
        self.stage = f"Indexing the library: file {i + 1} of {n} ({path.name})…"

    def _failed(self, message: str) -> None:
        if self.ready.is_set():
            self.model_state = f"failed: {message}"
        else:
            self.error = message

    def status_markdown(self) -> str:
        """The status line for readers ("5 articles · ready"), the files that failed under it,
        and the technical part (which LLM, where the index is) folded under "details"."""
        if self.error:
            head = f"⚠️ **Not ready:** {self.error}"
        elif not self.ready.is_set():
            head = f"⏳ {self.stage}"
        else:
            articles = self.counts[0]
            head = f"**{articles} article{'' if articles == 1 else 's'}** · {self._state()}"
        lines = [head, *[f"- {note}" for note in self.notes[:5]]]
        return "\n".join(lines) + "\n\n" + self._details()

    def _state(self) -> str:
        if self.model_state.startswith("failed"):
            return (
                "⚠️ searching works, but answers cannot be written: the model did not "
                "start (details below; fix it and restart the app)"
            )
        if self.model_state != "ready":
            return "the model is starting; a question asked now waits for it"
        problem = self.deps.llm.problem() if self.deps else ""
        if problem:  # the embedded server died
            return f"⚠️ {problem}"
        busy = [s for s in (self.feed_state, self.warmup.status() if self.warmup else "") if s]
        return " · ".join(["ready", *(f"{s}…" for s in busy)])

    def _details(self) -> str:
        settings = self.settings
        llm = self.deps.llm.where if self.deps else "not started yet"
        chroma = f"embedded Chroma in {settings.index_dir}"
        if settings.chroma_host:
            chroma = f"the Chroma server at {settings.chroma_host}:{settings.chroma_port}"
        facts = [
            f"LLM: {llm} ({self.model_state})",
            f"Index: {chroma}",
            f"Library: {self.counts[0]} articles, {self.counts[1]} passages from "
            f"{settings.data_dir}",
            f"Stage: {self.stage}",
        ]
        items = "".join(f"<li>{html.escape(fact)}</li>" for fact in facts)
        return f'<details class="nqa-details"><summary>details</summary><ul>{items}</ul></details>'

    def wait(self, timeout: float = WAIT_S) -> Deps:
        """The parts answers need, once the index is open; a start-up problem (Chroma down, a
        bad setting) is raised as soon as it is known, also when it becomes known while this
        waits (a question asked in the first seconds used to wait out the whole timeout)."""
        deadline = time.monotonic() + timeout
        while not self.ready.is_set():
            if self.error:
                raise BotError(self.error)
            left = deadline - time.monotonic()
            if left <= 0:
                raise BotError(f"Still preparing after {timeout:.0f} s: {self.stage}")
            self.ready.wait(min(left, ERROR_POLL_S))
        if self.deps is None:
            raise BotError(self.error or "The index is not open.")
        return self.deps

    def close(self) -> None:
        self._closing.set()
        self._feeds_due.set()
        self.fetcher.close()
        if self.warmup is not None:
            self.warmup.stop()
        if self.deps is not None:
            self.deps.close()

    # -- answers ---------------------------------------------------------------------------------
    def translate(self, text: str, source: str, target: str) -> dict[str, str]:
        """An evidence sentence in the reader's language, for the sources panel (a server
        function of the page): {"text", "note"}, or {"error"}. A sentence not translated yet
        waits for an answer slot, as a question does; one of the article's stored translation
        (bot.answering.pivot) is there at once."""
        try:
            found = self.translations.cached(text, target)
            if found is None and self.deps is not None and self.ready.is_set():
                found = stored_translation(self.deps.index, text, source, target)
            if found is None:
                deps = self.wait()
                with self.answers.ticket(bounded=True) as ticket:
                    ticket.wait()
                    found = self.translations.translate(deps.llm, text, source, target)
        except BotError as exc:
            return {"error": str(exc)}
        except Exception as exc:
            log.exception("translation failed")
            return {"error": unexpected(exc)}
        return {
            "text": found,
            "note": f"Machine translation ({self.settings.llm_model}); "
            "it may be wrong: the original above is what the answer rests on.",
        }

    # -- library ---------------------------------------------------------------------------------
    def articles(self) -> dict[str, dict[str, Any]]:
        if not self.ready.is_set() or self.deps is None:
            return {}
        try:
            return self.deps.index.articles()
        except BotError as exc:  # the Chroma server is down: the status line says so
            log.warning("cannot list the library: %s", exc)
            return {}

    def article(self, doc_id: str) -> str:
        """The library's view of one article (webui.library.article_page)."""
        try:
            return article_page(self.wait(0).index, doc_id)
        except BotError as exc:
            return f"<p>⚠️ {html.escape(str(exc))}</p>"

    def add_files(
        self, uploads: list[Path], names: list[str], progress: Callable[[int, int, str], None]
    ) -> str:
        """Copy accepted uploads into DATA_DIR and ingest them; a failed file is taken back out
        (an updated file gets its previous version back). Returns a Markdown report."""
        deps = self.wait(timeout=5)
        data_dir = self.settings.data_dir
        with self._upload_lock:
            data_dir.mkdir(parents=True, exist_ok=True)
            plan = plan_uploads(uploads, names, find_files([data_dir]), self.settings)
            placed = [place(src, data_dir, name) for src, name in plan.accepted]
            summary = Summary()
            try:
                if placed:
                    summary = ingest_paths(
                        [dest for dest, _ in placed],
                        self.settings,
                        deps.embedder,
                        progress=False,
                        on_file=lambda i, n, p: progress(i, n, p.name),
                    )
            except BaseException:
                for dest, previous in placed:
                    take_back(dest, previous)
                raise
            results = {r.name: r for r in summary.results}
            for dest, previous in placed:
                result = results.get(dest.name)
                if result is None or result.status == "failed":
                    take_back(dest, previous)
                elif previous is not None:
                    previous.unlink(missing_ok=True)
        if self.warmup is not None:
            self.warmup.kick()  # read the new and changed articles, drop the old ones' state
        return upload_report(summary.results, plan.rejected)

    # -- pages and feeds -------------------------------------------------------------------------
    def add_page(self, url: str) -> str:
        """Fetch the page at `url` and index it (ingest.web); a Markdown report."""
        deps = self.wait(timeout=5)
        if not url.strip():
            return "⚠️ Type the address of a page (https://…)."
        with self._upload_lock:
            [added] = add_urls([url.strip()], self.settings, self.fetcher, deps.embedder)
        self._indexed()
        if added.status == "failed":
            return f"⚠️ Not added: {added.reason}"
        return f"**{added.status.capitalize()}:** {added.title or added.url} (`{added.doc_id}`)"

    def add_feed(self, url: str) -> str:
        """Subscribe to the feed at `url` and check it now; a Markdown report."""
        self.wait(timeout=5)
        if not url.strip():
            return "⚠️ Type the address of an RSS or Atom feed (https://…)."
        try:
            sub = self.feeds.add(url.strip())
        except BotError as exc:
            return f"⚠️ {exc}"
        results = self.check_feeds([sub.url])
        self._feeds_due.set()  # the poller counts from this check
        if not results:
            return "⚠️ The feed was unsubscribed meanwhile."
        checked = results[0]
        if checked.error:
            return f"Subscribed to {sub.url}, but its check failed: {checked.error}"
        return f"**Subscribed** to {sub.url}.\n\n{_markdown_line(checked.line())}"

    def remove_feed(self, url: str) -> str:
        if not url or not self.feeds.remove(url):
            return "⚠️ Choose a feed to unsubscribe from."
        return f"Unsubscribed from {url}; its articles stay in the library."

    def feed_rows(self) -> list[list[Any]]:
        """The Library's table of feeds: address, title, last check, articles, last error."""
        try:
            subs = self.feeds.load()
        except BotError as exc:
            return [["", str(exc), "", 0, ""]]
        return [
            [s.url, s.title, s.last_checked.replace("T", " ")[:16], s.articles, s.last_error]
            for s in subs
        ]

    def check_feeds(self, urls: list[str] | None = None) -> list[Checked]:
        """Check the feeds of `urls` (None: every one) now, one writer at a time."""
        deps = self.wait(timeout=5)
        subs = [s for s in self.feeds.load() if urls is None or s.url in urls]
        if not subs:
            return []
        with self._checking:  # the poller's checks and the Library's, one at a time
            self.feed_state = f"checking {len(subs)} feed{'' if len(subs) == 1 else 's'}"
            try:
                results = check_feeds(
                    self.settings,
                    [s.url for s in subs],
                    fetcher=self.fetcher,
                    subscriptions=self.feeds,
                    embedder=deps.embedder,
                    writing=self._upload_lock,  # held only while the index is written
                )
            finally:
                self.feed_state = ""
        for checked in results:
            log.info("feed:\n%s", checked.line())
        self._indexed()
        return results

    def _poll_feeds(self) -> None:
        """Check every feed FEED_POLL_MINUTES after its last check, until the app stops."""
        poll(
            self.feeds,
            self.settings.feed_poll_minutes,
            self.check_feeds,
            self._closing,
            self._feeds_due,
        )

    def _indexed(self) -> None:
        """Articles were added or changed: the counts, and the warm-up reads them."""
        if self.deps is not None:
            index = self.deps.index
            self._counted(index.count_articles(), index.count())
        if self.warmup is not None:
            self.warmup.kick()


def _markdown_line(line: str) -> str:
    return "  \n".join(html.escape(part.strip()) for part in line.splitlines())
