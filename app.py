"""Web UI: `python app.py` (what `make run` calls) serves the chat on http://127.0.0.1:7860.

The page is up at once. In the background the index is brought in line with DATA_DIR (new or
changed articles ingested, unchanged ones skipped) and the embedded LLM is started; the page
shows their progress, and questions asked meanwhile wait with a visible status.
The logic behind the page (HTML of the sources, upload checks) is in bot/ui.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home, before gradio loads

import logging
import os.path
import shutil
import sys
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from bot import redact
from bot.answer import Answer, Done, Sources, Token, answer, stream_answer
from bot.deps import Deps, build_deps
from bot.embeddings import Embedder, make_embedder
from bot.errors import BotError
from bot.llm import ChatModel, make_llm
from bot.retrieval import Filters
from bot.settings import Settings
from bot.store_errors import IndexUnavailable
from bot.ui import (
    EXAMPLES,
    LIBRARY_HEADERS,
    UPLOAD_TYPES,
    SourcesView,
    answer_concurrency,
    claims_by_source,
    embedding_similarity,
    language_choices,
    launch_options,
    library_rows,
    plan_uploads,
    sources_html,
    supporting_spans,
)
from ingest.pipeline import FileResult, Summary, ingest_paths
from ingest.readers import find_files

log = logging.getLogger("newsqa.app")
WAIT_S = 900  # longest a question waits for the index and model to get ready
RETRY_S = 5.0  # seconds between attempts to reach a Chroma server that is down at start
_VECTOR_CACHE = 20_000

CSS = """
.nqa-sources { font-size: 0.92rem; }
.nqa-head { font-weight: 600; margin: 0 0 .5rem 0; }
.nqa-src { border: 1px solid var(--border-color-primary); border-radius: 8px;
           padding: .4rem .7rem; margin-bottom: .5rem; }
.nqa-cited { border-left: 4px solid var(--color-accent); }
.nqa-uncited { opacity: .85; }
.nqa-src summary { cursor: pointer; }
.nqa-n { font-weight: 700; }
.nqa-title { font-weight: 600; }
.nqa-status, .nqa-meta, .nqa-alt { color: var(--body-text-color-subdued); font-size: .85em; }
.nqa-text { white-space: pre-wrap; line-height: 1.45; }
.nqa-text mark { background: #fde68a; color: inherit; padding: 0 .1em; }
"""


class Backend:
    """Brings the index and the model up in the background; the UI asks it for status."""

    def __init__(
        self, settings: Settings, llm: ChatModel | None = None, embedder: Embedder | None = None
    ) -> None:
        self.settings = settings
        self._llm, self._embedder = llm, embedder
        self.deps: Deps | None = None
        self.stage = "Starting…"
        self.error = ""
        self.notes: list[str] = []
        self.model_state = "waiting for the index"
        self.ready = threading.Event()  # index open: retrieval works
        self.settled = threading.Event()  # nothing more will happen in the background
        self._upload_lock = threading.Lock()
        self._closing = threading.Event()
        self._vectors: dict[str, np.ndarray] = {}

    # -- start-up --------------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.prepare, name="prepare", daemon=True)
        thread.start()
        return thread

    def prepare(self) -> None:
        try:
            self.stage = "Loading the embedding model…"
            embedder = self._embedder or make_embedder(self.settings)
            summary = self._check_library(embedder)
            log.info("index check:\n%s", summary.report())
            self.notes = [f"{r.name}: {r.reason}" for r in summary.results if r.status == "failed"]
            if not summary.total_articles:
                self.notes.append("The library is empty: add articles in the Library tab.")
            self.deps = build_deps(self.settings, self._llm or make_llm(self.settings), embedder)
            self.stage = f"{summary.total_articles} articles, {summary.total_passages} passages"
            self.ready.set()
            self.model_state = "starting (the first answer waits for it)"
            self.deps.llm.start()
            self.model_state = "ready"
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
            self.stage = f"Checking the index against {self.settings.data_dir}…"
            try:
                summary = ingest_paths(
                    [self.settings.data_dir], self.settings, embedder, progress=False,
                    on_file=self._indexing,
                )  # fmt: skip
            except IndexUnavailable as exc:
                self.error = f"{exc} Trying again every {RETRY_S:.0f} s."
                log.warning("%s", exc)
                if self._closing.wait(RETRY_S):
                    raise
                continue
            self.error = ""
            return summary

    def _indexing(self, i: int, n: int, path: Path) -> None:
        self.stage = f"Indexing the library: file {i + 1} of {n} ({path.name})…"

    def _failed(self, message: str) -> None:
        if self.ready.is_set():
            self.model_state = f"failed: {message}"
        else:
            self.error = message

    def status_markdown(self) -> str:
        if self.error:
            return f"**Not ready:** {self.error}"
        if not self.ready.is_set():
            return f"⏳ {self.stage}"
        llm = self.deps.llm.where if self.deps else ""
        lines = [f"**Library:** {self.stage} · **LLM:** {llm}, {self.model_state}"]
        lines += [f"- {note}" for note in self.notes[:5]]
        return "\n".join(lines)

    def wait(self, timeout: float = WAIT_S) -> Deps:
        if self.error and not self.ready.is_set():
            raise BotError(self.error)
        if not self.ready.wait(timeout) or self.deps is None:
            raise BotError(self.error or f"Still preparing after {timeout:.0f} s: {self.stage}")
        return self.deps

    def close(self) -> None:
        self._closing.set()
        if self.deps is not None:
            self.deps.close()

    # -- answers ---------------------------------------------------------------------------------
    def highlights(self, deps: Deps, result: Answer) -> dict[int, list[tuple[int, int]]]:
        """The sentence of each cited passage closest to what the answer took from it."""
        similarity = embedding_similarity(deps.embedder.embed_query, self._embed_cached)
        out: dict[int, list[tuple[int, int]]] = {}
        for n, claims in claims_by_source(result.text).items():
            if 1 <= n <= len(result.passages):
                hit = result.passages[n - 1]
                lang = str(hit.meta.get("lang", ""))
                title = str(hit.meta.get("title", ""))
                out[n] = supporting_spans(hit.text, lang, claims, similarity, title)
        return out

    def _embed_cached(self, sentences: list[str]) -> np.ndarray:
        assert self.deps is not None
        missing = [s for s in dict.fromkeys(sentences) if s not in self._vectors]
        if missing:
            if len(self._vectors) > _VECTOR_CACHE:
                self._vectors.clear()
            for sentence, vector in zip(
                missing, self.deps.embedder.embed_passages(missing), strict=True
            ):
                self._vectors[sentence] = vector
        return np.stack([self._vectors[s] for s in sentences])

    # -- library ---------------------------------------------------------------------------------
    def articles(self) -> dict[str, dict[str, Any]]:
        if not self.ready.is_set() or self.deps is None:
            return {}
        try:
            return self.deps.index.articles()
        except BotError as exc:  # the Chroma server is down: the status line says so
            log.warning("cannot list the library: %s", exc)
            return {}

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
            placed = [_place(src, data_dir, name) for src, name in plan.accepted]
            summary = Summary()
            try:
                if placed:
                    summary = ingest_paths(
                        [dest for dest, _ in placed], self.settings, deps.embedder,
                        progress=False,
                        on_file=lambda i, n, p: progress(i, n, p.name),
                    )  # fmt: skip
            except BaseException:
                for dest, previous in placed:
                    _take_back(dest, previous)
                raise
            results = {r.name: r for r in summary.results}
            for dest, previous in placed:
                result = results.get(dest.name)
                if result is None or result.status == "failed":
                    _take_back(dest, previous)
                elif previous is not None:
                    previous.unlink(missing_ok=True)
        return upload_report(summary.results, plan.rejected)


def _place(src: Path, data_dir: Path, name: str) -> tuple[Path, Path | None]:
    """Copy an upload to data_dir/name atomically; the file it replaces is kept aside."""
    root = data_dir.resolve()
    dest = root / name
    if dest.parent != root or os.path.islink(dest):
        raise BotError(f"Refusing to write {name!r} outside {data_dir}.")
    part = root / f".{name}.part"
    shutil.copyfile(src, part)
    previous = None
    if dest.exists():
        previous = root / f".{name}.previous"
        os.replace(dest, previous)
    os.replace(part, dest)
    return dest, previous


def _take_back(dest: Path, previous: Path | None) -> None:
    if previous is not None and previous.exists():
        os.replace(previous, dest)
    else:
        dest.unlink(missing_ok=True)


def upload_report(results: list[FileResult], rejected: list[tuple[str, str]]) -> str:
    lines = []
    for r in results:
        if r.status == "failed":
            lines.append(f"- ✗ **{r.name}**: {r.reason}")
        elif r.status == "unchanged":
            lines.append(f"- = **{r.name}**: already in the library, unchanged")
        else:
            lines.append(f"- ✓ **{r.name}**: {r.status}, {r.passages} passages, searchable now")
    lines += [f"- ✗ **{name}**: {reason}" for name, reason in rejected]
    return "\n".join(lines) or "No file was given."


# -- chat handlers -------------------------------------------------------------------------------
Chat = list[dict[str, Any]]
Turns = list[dict[str, str]]


def mark_stopped(chat: Chat, turns: Turns) -> Chat:
    """After Stop: an answer that had not finished says so (finished ones are in `turns`)."""
    chat = list(chat or [])
    if chat and chat[-1].get("role") == "assistant":
        content = _text(chat[-1].get("content"))
        finished = turns and turns[-1].get("content") == content
        if not finished and not content.endswith("(stopped)_"):
            chat[-1] = {"role": "assistant", "content": f"{content}\n\n_(stopped)_"}
    return chat


def _text(content: Any) -> str:
    """Chatbot content as text (Gradio passes a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return ""


def make_respond(backend: Backend) -> Callable[..., Generator[tuple[Any, ...], None, None]]:
    def respond(
        message: str, chat: Chat, turns: Turns, top_k: float, langs: list[str], scores: bool
    ) -> Generator[tuple[Any, ...], None, None]:
        question = (message or "").strip()
        if not question:
            gr.Warning("Type a question first.")
            yield list(chat), gr.skip(), turns, gr.skip()
            return
        chat = [*(chat or []), {"role": "user", "content": question}]
        chat.append({"role": "assistant", "content": "_Searching the articles…_"})
        yield list(chat), sources_html(SourcesView(phase="retrieving")), turns, ""
        while not backend.ready.wait(0.5) and not backend.error:
            chat[-1] = {"role": "assistant", "content": f"_Preparing: {backend.stage}_"}
            yield list(chat), gr.skip(), turns, gr.skip()
        view = SourcesView(show_scores=bool(scores))
        text = ""
        try:
            deps = backend.wait()
            filters = Filters(lang=list(langs or []))
            result: Answer | None = None
            for event in stream_answer(deps, question, turns, filters, int(top_k)):
                if isinstance(event, Sources):
                    view.passages, view.context_n = event.passages, event.context_n
                    wait = "" if backend.model_state == "ready" else " The model is still starting."
                    status = f"_Reading {event.context_n} passages…{wait}_"
                    chat[-1] = {"role": "assistant", "content": status if event.passages else ""}
                    yield list(chat), sources_html(view), turns, gr.skip()
                elif isinstance(event, Token):
                    text += event.text
                    chat[-1] = {"role": "assistant", "content": text}
                    yield list(chat), gr.skip(), turns, gr.skip()
                elif isinstance(event, Done):
                    result = event.answer
            assert result is not None
            shown = f"⚠️ {result.text}" if result.error and not text else result.text
            if result.error and text:
                shown = result.text.replace(result.error, f"⚠️ {result.error}")
            chat[-1] = {"role": "assistant", "content": shown}
            view.phase = "refused" if result.refused else "done"
            view.cited = [c.n for c in result.citations]
            yield list(chat), sources_html(view), turns, gr.skip()
            if not result.error:
                turns = [*turns, {"role": "user", "content": question},
                         {"role": "assistant", "content": shown}]  # fmt: skip
            if view.cited:
                view.highlights = backend.highlights(deps, result)
            yield list(chat), sources_html(view), turns, gr.skip()
        except BotError as exc:
            chat[-1] = {"role": "assistant", "content": f"{text}\n\n⚠️ {exc}".strip()}
            yield list(chat), gr.skip(), turns, gr.skip()
        except Exception as exc:
            log.exception("answering failed")
            message = f"⚠️ Something went wrong ({type(exc).__name__}); the server log has details."
            chat[-1] = {"role": "assistant", "content": f"{text}\n\n{message}".strip()}
            yield list(chat), gr.skip(), turns, gr.skip()

    return respond


def make_ask(backend: Backend) -> Callable[..., dict[str, Any]]:
    def ask(
        question: str,
        top_k: int = 5,
        languages: str = "",
        history: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Answer a question from the indexed articles.

        Parameters:
            question: the question, in any language
            top_k: passages to retrieve (the model reads the best few)
            languages: comma-separated article language codes to search, e.g. "fr,de"; empty: all
            history: earlier turns, [{"role": "user"|"assistant", "content": "..."}]
        Returns:
            the answer, whether the bot declined, its citations and every retrieved passage
        """
        try:
            deps = backend.wait()
            langs = [code.strip() for code in str(languages or "").split(",") if code.strip()]
            k = int(top_k) if isinstance(top_k, int | float) else 0  # 0: TOP_K
            result = answer(deps, question, history or [], Filters(lang=langs), k)
        except BotError as exc:
            log.info("/ask refused: %s", exc)
            raise gr.Error(str(exc), print_exception=False) from None
        if result.error:
            log.warning("/ask failed: %s", result.error)
            raise gr.Error(result.error, print_exception=False)
        return result.to_dict()

    return ask


def build_ui(backend: Backend) -> gr.Blocks:
    settings = backend.settings
    limit = answer_concurrency(settings)
    respond, ask = make_respond(backend), make_ask(backend)

    def poll() -> tuple[Any, ...]:
        done = backend.settled.is_set()
        if not done:
            return backend.status_markdown(), gr.Timer(active=True), gr.skip(), gr.skip()
        return backend.status_markdown(), gr.Timer(active=False), *library()

    def library() -> tuple[Any, Any]:
        articles = backend.articles()
        return library_rows(articles), gr.Dropdown(choices=language_choices(articles))

    def add(files: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        paths = [Path(f) for f in files or []]

        def step(i: int, n: int, name: str) -> None:
            progress((i, n), desc=f"Indexing {name}", unit="files")

        try:
            report = backend.add_files(paths, [p.name for p in paths], step)
        except BotError as exc:
            report = f"⚠️ {exc}"
        return report, *library(), None

    with gr.Blocks(title="News Q&A") as demo:
        gr.Markdown(
            "## News Q&A\nAsk in your own language; answers cite the article passages they "
            "rest on, whatever their language."
        )
        status = gr.Markdown(backend.status_markdown(), elem_id="status")
        turns = gr.State([])
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Conversation", elem_id="chat", height=480, buttons=["copy"],
                        feedback_options=None, sanitize_html=True,
                    )  # fmt: skip
                    question = gr.Textbox(
                        placeholder="Ask about the articles, in any language…",
                        show_label=False, elem_id="question", lines=1, autofocus=True,
                        max_length=settings.max_question_chars,
                    )  # fmt: skip
                    with gr.Row():
                        send = gr.Button("Ask", variant="primary", elem_id="ask")
                        stop = gr.Button("Stop", variant="stop", elem_id="stop")
                        clear = gr.Button("New chat", elem_id="new-chat")
                    examples = gr.Examples(EXAMPLES, inputs=[question], label="Examples")
                    with gr.Accordion("Settings", open=False, elem_id="settings"):
                        top_k = gr.Slider(
                            1, 20, value=settings.top_k, step=1,
                            label="Passages retrieved (top-k)",
                        )  # fmt: skip
                        langs = gr.Dropdown(
                            choices=[], value=[], multiselect=True, label="Only articles in",
                            info="Empty: every language.",
                        )  # fmt: skip
                        scores = gr.Checkbox(False, label="Show retrieval scores")
                with gr.Column(scale=2):
                    gr.Markdown("### Sources")
                    sources = gr.HTML(elem_id="sources")
            with gr.Tab("Library", id="library") as library_tab:
                table = gr.Dataframe(
                    headers=LIBRARY_HEADERS, interactive=False, elem_id="library", wrap=True
                )
                files = gr.File(
                    file_count="multiple", file_types=UPLOAD_TYPES, elem_id="upload",
                    label=f"Add articles ({', '.join(UPLOAD_TYPES)}; up to "
                    f"{settings.max_upload_files} files of {settings.max_upload_mb:g} MB)",
                )  # fmt: skip
                add_button = gr.Button("Add to library", variant="primary", elem_id="add")
                report = gr.Markdown(elem_id="upload-report")

        inputs = [question, chatbot, turns, top_k, langs, scores]
        outputs = [chatbot, sources, turns, question]
        common: dict[str, Any] = {
            "concurrency_limit": limit, "concurrency_id": "answer", "api_visibility": "private",
        }  # fmt: skip
        asked = [
            question.submit(respond, inputs, outputs, **common),
            send.click(respond, inputs, outputs, **common),
            examples.load_input_event.then(respond, inputs, outputs, **common),
        ]
        private: dict[str, Any] = {"api_visibility": "private"}
        stop.click(mark_stopped, [chatbot, turns], [chatbot], cancels=asked, **private)
        chatbot.clear(lambda: ("", []), None, [sources, turns], cancels=asked, **private)
        clear.click(
            lambda: ([], "", [], ""), None, [chatbot, sources, turns, question],
            cancels=asked, **private,
        )  # fmt: skip
        timer = gr.Timer(1.0)
        timer.tick(poll, None, [status, timer, table, langs], **private)
        library_tab.select(library, None, [table, langs], **private)
        add_button.click(
            add, [files], [report, table, langs, files], concurrency_limit=1, **private
        )
        gr.api(ask, api_name="ask", concurrency_limit=limit, concurrency_id="answer")
    return demo


def theme() -> gr.themes.Base:
    """System fonts only: the page loads nothing from the internet."""
    return gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings()
    redact.install(settings)
    try:
        options = launch_options(settings)
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    backend = Backend(settings)
    backend.start()
    demo = build_ui(backend)
    demo.queue(
        default_concurrency_limit=answer_concurrency(settings), max_size=settings.ui_queue_size
    )
    print(f"News Q&A: http://{options.host}:{options.port} (Ctrl-C stops it)", flush=True)
    try:
        demo.launch(
            server_name=options.host, server_port=options.port, auth=options.auth,
            max_file_size=options.max_file_size, show_error=False, ssr_mode=False, quiet=True,
            theme=theme(), css=CSS, footer_links=["api"],
        )  # fmt: skip
    except OSError as exc:
        print(f"error: cannot serve on {options.host}:{options.port} ({exc}); "
              "set UI_PORT to a free port.", file=sys.stderr)  # fmt: skip
        return 1
    finally:
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
