"""Web UI: `python app.py` (what `make run` calls) serves the chat on http://127.0.0.1:7860.

Beside the page: Gradio's /ask API and the OpenAI chat protocol under /v1 (webui/openai_api.py).
The page is up at once. In the background the index is brought in line with DATA_DIR (new or
changed articles ingested, unchanged ones skipped) and the embedded LLM is started; the page
shows their progress, and questions asked meanwhile wait with a visible status.
This file lays out the page; the logic behind it is in webui/ (backend, chat handlers, the
sources panel, library and uploads, serving options, the OpenAI-compatible API).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from bot.deps import stop_on_sigterm
from bot.errors import BotError
from bot.settings import Settings
from bot.text import redact
from webui.assets import CLOSE_SHEET, CSS, HEAD, OPEN_SHEET, TRANSLATE
from webui.backend import Backend
from webui.chat import make_ask, make_respond, mark_stopped, regenerate
from webui.feedback import closed_comment, make_comment, make_rate
from webui.library import (
    FEED_HEADERS,
    LIBRARY_HEADERS,
    UPLOAD_TYPES,
    language_choices,
    library_rows,
)
from webui.openai_api import openai_app
from webui.serving import launch_options, listen, serve

STATUS_S = 5.0  # how often an open page refreshes its status line once start-up is over
EXAMPLES = [
    "What did To Lam ask of Hai Phong?",
    "Quels sont les objectifs de Hai Phong pour 2030 ?",
    "Welche drei historischen Perioden stellt der Workshop dar?",
    "What makes Hai Phong an international connection center?",
]


@dataclass
class Page:
    """The page's components that handlers read or write."""

    status: Any
    turns: Any
    records: Any
    rated: Any
    chatbot: Any
    question: Any
    send: Any
    stop: Any
    clear: Any
    examples: Any
    top_k: Any
    langs: Any
    scores: Any
    comment: Any
    save_comment: Any
    sources: Any
    library_tab: Any
    table: Any
    article: Any
    files: Any
    add: Any
    report: Any
    web_url: Any
    add_page: Any
    add_feed: Any
    web_report: Any
    feeds: Any
    feed_pick: Any
    unfeed: Any


def build_ui(backend: Backend) -> gr.Blocks:
    with gr.Blocks(title="News Q&A", analytics_enabled=False) as demo:
        gr.Markdown(
            "## News Q&A\nAsk in your own language; answers cite the article passages they "
            "rest on, whatever their language."
        )
        # filled when the page loads (a value given here would be the one of start-up)
        status = gr.Markdown("", elem_id="status")
        turns = gr.State([])
        records = gr.State({})  # what a rating keeps of each answer, by its chat index
        rated = gr.State(None)  # the answer the comment box is about
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False):
                chat = _chat_tab(backend.settings, _translate(backend))
            with gr.Tab("Library", id="library") as library_tab:
                library = _library_tab(backend.settings)
        page = Page(status, turns, records, rated, **chat, library_tab=library_tab, **library)
        _wire_chat(page, backend)
        _wire_library(page, backend, demo)
    return demo


def _translate(backend: Backend) -> Callable[[Any], dict[str, str]]:
    def translate(asked: Any) -> dict[str, str]:
        """The sources panel's "Show in English" (webui.assets.TRANSLATE): one argument, as
        the page's `server` object passes what it is given whole only when it is one."""
        if not isinstance(asked, dict):
            return {"error": "A translation request is {text, from, to}."}
        return backend.translate(*(str(asked.get(k) or "") for k in ("text", "from", "to")))

    return translate


def _chat_tab(settings: Settings, translate: Callable[..., Any]) -> dict[str, Any]:
    with gr.Column(scale=3):
        chatbot = gr.Chatbot(
            label="Conversation",
            elem_id="chat",
            height=480,
            buttons=["copy"],
            feedback_options=("Like", "Dislike"),
            sanitize_html=True,
        )
        # narrow screens only (CSS): the sources open as a sheet over the page's lower half
        toggle = gr.Button("Show the sources", elem_id="sources-toggle", size="sm")
        toggle.click(None, js=OPEN_SHEET)
        with gr.Row():
            comment = gr.Textbox(
                visible=False,
                lines=1,
                elem_id="comment",
                scale=4,
                max_length=settings.max_question_chars,
            )
            save_comment = gr.Button("Save comment", visible=False, elem_id="save-comment")
        question = gr.Textbox(
            placeholder="Ask about the articles, in any language…",
            show_label=False,
            elem_id="question",
            lines=1,
            autofocus=True,
            max_length=settings.max_question_chars,
        )
        with gr.Row():
            send = gr.Button("Ask", variant="primary", elem_id="ask")
            stop = gr.Button("Stop", variant="stop", elem_id="stop")
            clear = gr.Button("New chat", elem_id="new-chat")
        examples = gr.Examples(EXAMPLES, inputs=[question], label="Examples")
        with gr.Accordion("Settings", open=False, elem_id="settings"):
            top_k = gr.Slider(
                1, 20, value=settings.top_k, step=1, label="Passages retrieved (top-k)"
            )
            langs = gr.Dropdown(
                choices=[],
                value=[],
                multiselect=True,
                label="Only articles in",
                info="Empty: every language.",
            )
            scores = gr.Checkbox(False, label="Show retrieval scores")
    with gr.Column(scale=2, elem_id="sources-col"):
        with gr.Row(equal_height=True):
            gr.Markdown("### Sources")
            close = gr.Button("Close", elem_id="sources-close", size="sm", scale=0)
            close.click(None, js=CLOSE_SHEET)
        sources = gr.HTML(elem_id="sources", js_on_load=TRANSLATE, server_functions=[translate])
    return {
        "chatbot": chatbot,
        "question": question,
        "send": send,
        "stop": stop,
        "clear": clear,
        "examples": examples,
        "top_k": top_k,
        "langs": langs,
        "scores": scores,
        "comment": comment,
        "save_comment": save_comment,
        "sources": sources,
    }


def _library_tab(settings: Settings) -> dict[str, Any]:
    table = gr.Dataframe(
        headers=LIBRARY_HEADERS,
        interactive=False,
        elem_id="library",
        wrap=True,
        column_widths=["46%", "11%", "12%", "9%", "22%"],
        label="Click an article to read it",
    )
    article = gr.HTML(elem_id="article")
    files = gr.File(
        file_count="multiple",
        file_types=UPLOAD_TYPES,
        elem_id="upload",
        label=f"Add articles ({', '.join(UPLOAD_TYPES)}; up to "
        f"{settings.max_upload_files} files of {settings.max_upload_mb:g} MB)",
    )
    add = gr.Button("Add to library", variant="primary", elem_id="add")
    report = gr.Markdown(elem_id="upload-report")
    gr.Markdown(
        "### From the web\nAdd a page by its address, or subscribe to a site's RSS or Atom "
        f"feed: its articles are fetched whole and checked every {settings.feed_poll_minutes:g} "
        "minutes."
    )
    web_url = gr.Textbox(
        label="Address of a page or a feed", placeholder="https://…", elem_id="web-url"
    )
    with gr.Row():
        add_page = gr.Button("Add the page", elem_id="add-page")
        add_feed = gr.Button("Subscribe to the feed", elem_id="add-feed")
    web_report = gr.Markdown(elem_id="web-report")
    feeds = gr.Dataframe(
        headers=FEED_HEADERS,
        interactive=False,
        elem_id="feeds",
        wrap=True,
        label="Feeds subscribed to",
    )
    with gr.Row():
        feed_pick = gr.Dropdown(choices=[], label="Feed", elem_id="feed-pick", scale=3)
        unfeed = gr.Button("Unsubscribe", elem_id="unfeed", scale=1)
    return {
        "table": table,
        "article": article,
        "files": files,
        "add": add,
        "report": report,
        "web_url": web_url,
        "add_page": add_page,
        "add_feed": add_feed,
        "web_report": web_report,
        "feeds": feeds,
        "feed_pick": feed_pick,
        "unfeed": unfeed,
    }


def _wire_chat(page: Page, backend: Backend) -> None:
    limit = backend.answers.limit  # answers written at once, from the page, /ask and /v1
    respond = make_respond(backend)
    inputs = [
        page.question,
        page.chatbot,
        page.turns,
        page.records,
        page.top_k,
        page.langs,
        page.scores,
    ]
    outputs = [page.chatbot, page.sources, page.turns, page.question, page.records]
    common: dict[str, Any] = {
        "concurrency_limit": limit,
        "concurrency_id": "answer",
        "api_visibility": "private",
    }
    asked = [
        page.question.submit(respond, inputs, outputs, **common),
        page.send.click(respond, inputs, outputs, **common),
        page.examples.load_input_event.then(respond, inputs, outputs, **common),
    ]
    comment_box = [page.comment, page.save_comment]

    def retry(chat: Any, turns: Any, records: Any, data: gr.RetryData) -> tuple[Any, ...]:
        return (*regenerate(chat, turns, records, data), *closed_comment())

    asked.append(
        page.chatbot.retry(
            retry,
            [page.chatbot, page.turns, page.records],
            [page.chatbot, page.turns, page.records, page.question, *comment_box, page.rated],
            api_visibility="private",
            queue=False,
        ).then(respond, inputs, outputs, **common)
    )
    page.chatbot.like(
        make_rate(backend.feedback),
        [page.records],
        [*comment_box, page.rated],
        api_visibility="private",
    )
    save = make_comment(backend.feedback)
    for saved in (page.save_comment.click, page.comment.submit):
        saved(save, [page.comment, page.rated, page.records], comment_box, api_visibility="private")
    private: dict[str, Any] = {"api_visibility": "private"}
    page.stop.click(
        mark_stopped, [page.chatbot, page.turns], [page.chatbot], cancels=asked, **private
    )
    page.chatbot.clear(
        lambda: ("", [], {}, *closed_comment()),
        None,
        [page.sources, page.turns, page.records, *comment_box, page.rated],
        cancels=asked,
        **private,
    )
    page.clear.click(
        lambda: ([], "", [], "", {}, *closed_comment()),
        None,
        [
            page.chatbot,
            page.sources,
            page.turns,
            page.question,
            page.records,
            *comment_box,
            page.rated,
        ],
        cancels=asked,
        **private,
    )
    gr.api(make_ask(backend), api_name="ask", concurrency_limit=limit, concurrency_id="answer")


def _wire_library(page: Page, backend: Backend, demo: gr.Blocks) -> None:
    def library() -> tuple[Any, Any]:
        articles = backend.articles()
        return library_rows(articles), gr.Dropdown(choices=language_choices(articles))

    def poll() -> tuple[Any, ...]:
        if not backend.settled.is_set():
            return backend.status_markdown(), gr.Timer(active=True), gr.skip(), gr.skip()
        return backend.status_markdown(), gr.Timer(active=False), *library()

    def add(files: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        paths = [Path(f) for f in files or []]

        def step(i: int, n: int, name: str) -> None:
            progress((i, n), desc=f"Indexing {name}", unit="files")

        try:
            report = backend.add_files(paths, [p.name for p in paths], step)
        except BotError as exc:
            report = f"⚠️ {exc}"
        return report, *library(), None

    private: dict[str, Any] = {"api_visibility": "private"}
    timer = gr.Timer(1.0)
    polled = [page.status, timer, page.table, page.langs]
    quiet: dict[str, Any] = {**private, "show_progress": "hidden", "queue": False}
    timer.tick(poll, None, polled, **quiet)
    # once settled, the status line is still kept current: the model may stop later on
    gr.Timer(STATUS_S).tick(backend.status_markdown, None, [page.status], **quiet)
    demo.load(poll, None, polled, **quiet)  # no start-up message left on a page opened later
    page.library_tab.select(library, None, [page.table, page.langs], **private)

    def feeds() -> tuple[Any, Any]:
        rows = backend.feed_rows()
        return rows, gr.Dropdown(choices=[r[0] for r in rows if r[0]], value=None)

    def fetched(report: str) -> tuple[Any, ...]:
        return report, *library(), *feeds()

    web_outputs = [page.web_report, page.table, page.langs, page.feeds, page.feed_pick]
    one_at_a_time: dict[str, Any] = {**private, "concurrency_limit": 1, "concurrency_id": "web"}
    page.add_page.click(
        lambda url: fetched(_reported(backend.add_page, url)),
        [page.web_url],
        web_outputs,
        **one_at_a_time,
    )
    page.add_feed.click(
        lambda url: fetched(_reported(backend.add_feed, url)),
        [page.web_url],
        web_outputs,
        **one_at_a_time,
    )
    page.unfeed.click(
        lambda url: (backend.remove_feed(url or ""), *feeds()),
        [page.feed_pick],
        [page.web_report, page.feeds, page.feed_pick],
        **private,
    )
    page.library_tab.select(feeds, None, [page.feeds, page.feed_pick], **private)

    def read(selected: gr.SelectData) -> str:
        row = selected.row_value or []
        return backend.article(str(row[-1])) if row else ""

    page.table.select(read, None, [page.article], **private)
    page.add.click(
        add,
        [page.files],
        [page.report, page.table, page.langs, page.files],
        concurrency_limit=1,
        **private,
    )


def _reported(action: Callable[[str], str], url: str) -> str:
    try:
        return action(url or "")
    except BotError as exc:
        return f"⚠️ {exc}"


def theme() -> gr.themes.Base:
    """System fonts only: the page loads nothing from the internet."""
    return gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )


def main() -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # gradio's launch: no calls home
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings()
    redact.install(settings)
    try:
        options = launch_options(settings)
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop_on_sigterm()  # and so stop the embedded LLM server this process starts
    backend = Backend(settings)
    try:
        backend.start()
        demo = build_ui(backend)
        demo.queue(default_concurrency_limit=backend.answers.limit, max_size=settings.ui_queue_size)
        app = openai_app(backend, options.auth)  # /v1: the OpenAI chat protocol
        gr.mount_gradio_app(
            app,
            demo,
            path="/",
            server_name=options.host,
            server_port=options.port,
            auth=options.auth,
            max_file_size=options.max_file_size,
            show_error=False,
            ssr_mode=False,
            theme=theme(),
            css=CSS,
            head=HEAD,
            footer_links=["api"],
        )
        sock = listen(options)
        url = f"http://{options.host}:{options.port}"
        print(f"News Q&A: {url} (Ctrl-C stops it); OpenAI-compatible API: {url}/v1", flush=True)
        serve(app, sock)
    except KeyboardInterrupt:
        pass  # stopped before the page was up
    except OSError as exc:
        print(
            f"error: cannot serve on {options.host}:{options.port} ({exc}); "
            "set UI_PORT to a free port.",
            file=sys.stderr,
        )
        return 1
    finally:
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
