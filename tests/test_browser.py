"""The chat in a real browser: Debian's Chromium, headless, driven by Playwright.

The app runs with the real embedder and Chroma and the fake LLM (app_server in conftest.py).
`make test` installs Chromium (apt packages chromium and chromium-driver); Playwright's own
browser download is never used.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.conftest import ROOT, RunningApp, start_app, stop_app
from tests.soak.conftest import fake_llm_process
from tests.web_server import Route, serving
from webui.library import LIBRARY_HEADERS

pytestmark = pytest.mark.slow  # `make check` leaves it out

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 90_000
expect.set_options(timeout=TIMEOUT_MS)  # assertions wait as long as actions: CI may be slow
QUESTION = "What did To Lam ask of Hai Phong?"
READY = re.compile(r"\d+ articles · (ready|the model is starting)")  # the status line, once up
# every text the status line shows (not Gradio's hidden progress tracker), from the first:
# recorded before the page's own scripts run
RECORD_STATUS = """
window.__statuses = [];
new MutationObserver(() => {
  const status = document.querySelector("#status [data-testid='markdown']");
  const text = status ? status.innerText.trim() : "";
  const last = window.__statuses[window.__statuses.length - 1];
  if (text && text !== last) window.__statuses.push(text);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""

# set once the sources panel shows that a new search started
SEARCHED_AGAIN = """() => {
  window.__searchedAgain = false;
  new MutationObserver(() => {
    const panel = document.querySelector("#sources");
    if (panel && panel.innerText.includes("Searching the articles")) window.__searchedAgain = true;
  }).observe(document.querySelector("#sources"),
             {subtree: true, childList: true, characterData: true});
}"""

# how many elements under a selector scroll sideways: a column cut off or out of sight
OVERFLOWING = """(selector) => [...document.querySelectorAll(selector + " *")].filter(
  (e) => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== "visible"
    && e.getBoundingClientRect().height > 0  // not Gradio's collapsed row that sizes columns
).length"""

ARTICLE = """<!doctype html><html><head><title>Hai Phong opens a floating library</title>
<script>window.__pwned = "head";</script></head><body><article>
<h1>Hai Phong opens a floating library</h1>
<p>The floating library of Hai Phong opened on the Cam River in March 2025. It lends books to
the fishermen of the bay and their children, and it holds twelve thousand volumes.</p>
<p>Readers wrote &lt;img src=x onerror="window.__pwned='text'"&gt; on the guest book page, and
the librarians kept it as a curiosity of the floating library.</p>
<script>window.__pwned = "body";</script>
</article></body></html>
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: `make test` installs Debian's chromium package "
            "(or set CHROMIUM to its path)."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, app_server: RunningApp) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_server.url)
    expect(page.locator("#status")).to_contain_text(READY, timeout=TIMEOUT_MS)
    yield page
    context.close()


@contextmanager
def _app_with_llm(
    browser: Browser, tmp_path: Path, *llm_options: str
) -> Iterator[tuple[Page, RunningApp]]:
    """`app.py` against a fake LLM server process run with `llm_options`, and a page on it
    that is ready; all stopped afterwards."""
    llm = fake_llm_process(tmp_path / "llm.log", *llm_options)
    llm.start()
    process, app = start_app(
        tmp_path, LLM_BACKEND="openai", LLM_BASE_URL=f"http://127.0.0.1:{llm.port}/v1"
    )
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(app.url)
        expect(page.locator("#status")).to_contain_text(READY)
        yield page, app
        context.close()
    finally:
        stop_app(process)
        llm.kill()


def _ask(page: Page, question: str) -> None:
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()


def _bot_messages(page: Page) -> list[str]:
    return [m.strip() for m in page.locator("#chat .bot").all_inner_texts() if m.strip()]


def test_a_question_streams_a_cited_answer_beside_its_source(page: Page, tmp_path: Path) -> None:
    expect(page.locator("#sources-toggle")).to_be_hidden()  # the sources are beside the chat
    _ask(page, QUESTION)
    expect(page.locator("#sources details").first).to_be_visible()
    expect(page.locator("#chat .bot").last).to_contain_text("[1]")
    cited = page.locator("#sources details.nqa-cited")
    expect(cited).to_have_count(1)
    expect(cited.locator("mark")).to_have_count(1)
    answer = _bot_messages(page)[-1].removesuffix("[1]").strip()
    assert answer and answer in cited.locator("mark").inner_text()  # the quoted sentence is marked
    assert cited.get_attribute("open") is not None
    uncited = page.locator("#sources details.nqa-uncited")
    assert uncited.count() >= 1 and all(
        d.get_attribute("open") is None for d in uncited.all()
    )  # retrieved but uncited passages are collapsed
    expect(cited.locator("a", has_text="source")).to_have_attribute(
        "href", re.compile(r"^https?://")
    )
    # each card is headed by what it holds: the cited one by the sentence the answer rests on,
    # the others by a sentence of their own (not all by the article's title), in plain words
    heads = page.locator("#sources .nqa-head-text").all_inner_texts()
    titles = page.locator("#sources .nqa-about").all_inner_texts()
    assert len(set(heads)) == len(heads) and not set(heads) & {t.split(" · ")[0] for t in titles}
    roles = set(page.locator("#sources .nqa-status").all_inner_texts())
    assert "cited" in roles and roles <= {"cited", "read", "also found"}, roles
    _reads_the_evidence(page, cited)
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)


def _reads_the_evidence(page: Page, cited: Locator) -> None:
    """The French evidence of an English question is read in English, under the original;
    [1] in the answer opens its card and brings it into view. The card is headed by the
    sentence the answer rests on."""
    head = cited.locator(".nqa-head-text").inner_text().removesuffix("…")
    assert len(head) > 20 and cited.locator("mark").inner_text().startswith(head), head
    cited.locator("button.nqa-translate", has_text="Show in English").click()
    translated = cited.locator(".nqa-translation .nqa-translated")
    expect(translated).to_have_text(f"(English) {cited.locator('mark').inner_text()}")  # fake LLM
    expect(cited.locator(".nqa-translation .nqa-mt")).to_contain_text("Machine translation")
    cited.locator("summary").click()
    expect(cited).not_to_have_attribute("open", "")
    page.locator("#chat .bot a", has_text="[1]").last.click()
    expect(cited).to_have_attribute("open", "")
    expect(cited).to_be_in_viewport()


def test_a_reader_waits_reads_the_evidence_regenerates_and_rates_the_answer(
    browser: Browser, tmp_path: Path
) -> None:
    """The whole way through, against an LLM server that takes 3 s before each reply (it quotes
    the first passage, as LLM_BACKEND=fake does); the rating then becomes a question file."""
    with _app_with_llm(browser, tmp_path, "--delay", "3", "--like-fake-chat") as (page, app):
        _rate_a_regenerated_answer(page, app, tmp_path)


def _rate_a_regenerated_answer(page: Page, app: RunningApp, tmp_path: Path) -> None:
    _ask(page, QUESTION)
    bot = page.locator("#chat .bot").last
    expect(bot).to_contain_text(re.compile(r"Reading \d+ passages… [1-9]\d* s"))  # the wait
    expect(page.locator("#sources details.nqa-cited mark")).to_have_count(1)  # finished
    _reads_the_evidence(page, page.locator("#sources details.nqa-cited"))
    page.locator("#chat button[aria-label='Dislike']").last.click()
    expect(page.locator("#comment textarea")).to_be_visible()
    # regenerate: the same question answered again, in place of the first answer (the
    # sources panel says it searches again before the new answer's cards replace the old)
    page.evaluate(SEARCHED_AGAIN)
    page.locator("#chat button[aria-label='Retry']").click()
    page.wait_for_function("window.__searchedAgain === true")
    expect(page.locator("#sources details.nqa-cited mark")).to_have_count(1)
    expect(page.locator("#chat .bot")).to_have_count(1)
    expect(page.locator("#chat .user")).to_have_text([QUESTION])
    # rate the new answer, with a comment
    page.locator("#chat button[aria-label='Like']").last.click()
    expect(page.locator("#comment textarea")).to_be_visible()
    page.locator("#comment textarea").fill("Right, and the sentence is marked.")
    page.locator("#save-comment").click()
    expect(page.locator("#comment textarea")).to_be_hidden()
    ratings = app.data_dir.parent / "feedback.jsonl"
    lines = [json.loads(line) for line in ratings.read_text(encoding="utf-8").splitlines()]
    first, last = lines[-3], lines[-1]
    assert first["rating"] == "down" and first["answer_id"] != last["answer_id"]
    assert (last["rating"], last["comment"]) == ("up", "Right, and the sentence is marked.")
    assert last["question"] == QUESTION and last["citations"] and last["passages"]
    # the rating becomes a question of the eval
    out = tmp_path / "from-users.jsonl"
    made = _run_eval("feedback", "--from", str(ratings), "--out", str(out), "--yes")
    assert "1 questions added" in made.stdout, made.stdout + made.stderr
    checked = _run_eval("validate", str(out))
    assert checked.returncode == 0, checked.stderr
    [question] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert question["question"] == QUESTION and question["expected_docs"] == [
        last["citations"][0]["doc_id"]
    ]


def _run_eval(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_example_asks_in_one_click_a_follow_up_works_and_new_chat_clears(page: Page) -> None:
    page.get_by_text(QUESTION, exact=True).first.click()
    expect(page.locator("#chat .bot").last).to_contain_text("[1]")
    _ask(page, "And what did he say about its results?")
    expect(page.locator("#chat .bot")).to_have_count(2)
    expect(page.locator("#chat .bot").last).to_contain_text("[1]")
    # the answer is finished once its highlight is drawn (the last thing it draws): a New chat
    # clicked before that can be painted over by the answer's last frame
    expect(page.locator("#sources details.nqa-cited mark")).to_have_count(1)
    page.locator("#new-chat").click()
    expect(page.locator("#chat .bot")).to_have_count(0)
    expect(page.locator("#sources details")).to_have_count(0)


def test_settings_filter_the_language_and_show_scores(page: Page) -> None:
    page.get_by_text("Settings").click()
    page.get_by_label("Show retrieval scores").check()
    page.get_by_label("Only articles in").click()
    page.get_by_role("option", name="German").click()
    page.keyboard.press("Escape")
    _ask(page, QUESTION)
    expect(page.locator("#sources .nqa-meta").first).to_contain_text("score")
    about = page.locator("#sources .nqa-about")
    expect(about.first).to_contain_text("German")
    texts = about.all_text_contents()  # collapsed cards too
    assert len(texts) > 1 and all("German" in text for text in texts), texts


@pytest.mark.reliability
def test_an_uploaded_article_is_listed_searchable_and_shown_inert(
    page: Page, tmp_path: Path, app_server: RunningApp
) -> None:
    page.get_by_role("tab", name="Library").click()
    expect(page.locator("#library")).to_contain_text("Construire Hai Phong")
    article = tmp_path / "floating-library.html"
    article.write_text(ARTICLE, encoding="utf-8")
    page.locator("#upload input[type=file]").set_input_files(str(article))
    page.locator("#add").click()
    expect(page.locator("#upload-report")).to_contain_text("searchable now")
    expect(page.locator("#library")).to_contain_text("Hai Phong opens a floating library")
    assert (app_server.data_dir / "floating-library.html").is_file()

    page.get_by_role("tab", name="Chat").click()
    _ask(page, "What does the floating library lend to fishermen?")
    expect(page.locator("#chat .bot").last).to_contain_text("[1]")
    expect(page.locator("#sources details").first).to_contain_text("floating library")
    _ask(page, "What did readers write on the guest book page of the floating library?")
    expect(page.locator("#sources")).to_contain_text("onerror")  # shown as text...
    page.wait_for_timeout(500)
    assert page.evaluate("window.__pwned") is None  # ...never run
    assert page.locator("#sources img").count() == 0


def test_a_page_opened_later_shows_the_readers_status_at_once(
    page: Page, browser: Browser, app_server: RunningApp
) -> None:
    """The app is up (the `page` fixture waited for it): a new page never shows a start-up
    message, and the technical details are folded away."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(RECORD_STATUS)
    fresh = context.new_page()
    fresh.goto(app_server.url)
    status = fresh.locator("#status")
    expect(status).to_contain_text(READY)
    shown = fresh.evaluate("window.__statuses")
    assert shown and all(READY.search(text) for text in shown), shown
    assert not any("Checking" in text or "127.0.0.1" in text for text in shown), shown
    details = status.locator("details")
    expect(details).not_to_have_attribute("open", "")
    expect(details.locator("li").first).to_be_hidden()
    details.locator("summary").click()
    expect(details.locator("li").first).to_contain_text("LLM: the fake LLM")
    context.close()


def test_a_slow_model_shows_its_phase_and_the_seconds_while_the_answer_waits(
    browser: Browser, tmp_path: Path
) -> None:
    """An LLM server that takes 4 s before its first word, as the embedded one reads a prompt:
    the answer's bubble counts the seconds, then the answer replaces it, with the sentence
    no passage supports marked."""
    reply = "It is a port [1]. Its mayor keeps ninety moon bases [1]."
    with _app_with_llm(browser, tmp_path, "--delay", "4", "--reply", reply) as (page, _):
        _ask(page, "Is Hai Phong a port city?")
        bot = page.locator("#chat .bot").last
        expect(bot).to_contain_text(re.compile(r"Reading \d+ passages… [1-9]\d* s"))
        expect(bot).to_contain_text(re.compile(r"It is a port \[\d\]\."))  # [n]: as checked
        # no passage says the second sentence: the page marks it, with a reason
        flagged = bot.locator(".nqa-unsupported", has_text="ninety moon bases")
        expect(flagged).to_have_count(1)
        expect(flagged).to_contain_text("not found in its source")
        assert "do not clearly say this" in (flagged.get_attribute("title") or "")


def test_on_a_narrow_screen_the_sources_open_beside_the_latest_answer(
    browser: Browser, app_server: RunningApp, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 400, "height": 800})
    page = context.new_page()
    page.goto(app_server.url)
    expect(page.locator("#status")).to_contain_text(READY)
    _ask(page, QUESTION)
    cited = page.locator("#sources details.nqa-cited")
    expect(cited.locator("mark")).to_have_count(1)  # the answer is finished
    expect(cited).not_to_be_in_viewport()  # stacked under everything else, far below
    page.locator("#sources-toggle").click()
    evidence = cited.locator("mark")
    expect(evidence).to_be_in_viewport()
    answer, sheet = page.locator("#chat .bot").last, page.locator("#sources-col")
    expect(answer).to_be_in_viewport()
    answer_box, sheet_box = answer.bounding_box(), sheet.bounding_box()
    evidence_box = evidence.bounding_box()
    assert answer_box and sheet_box and evidence_box
    assert answer_box["y"] < sheet_box["y"] <= evidence_box["y"]  # the answer above the sheet
    page.screenshot(path=str(tmp_path / "narrow.png"))
    page.locator("#sources-close").click()
    expect(cited).not_to_be_in_viewport()
    page.locator("#chat .bot a", has_text="[1]").last.click()  # a marker opens it too
    expect(cited).to_be_in_viewport()
    context.close()


def test_the_library_fits_a_desktop_shows_dates_and_opens_an_article(
    browser: Browser, app_server: RunningApp
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(app_server.url)
    expect(page.locator("#status")).to_contain_text(READY)
    page.get_by_role("tab", name="Library").click()
    row = page.locator("#library [role=row]", has_text="Construire Hai Phong")
    expect(row).to_contain_text("2024-11-14")  # the date the article has
    overflowing = page.evaluate(OVERFLOWING, "#library")
    assert overflowing == 0  # no column is cut off or scrolled out of sight
    headers = page.locator("#library [role=columnheader]").all_inner_texts()
    assert [h.strip() for h in headers[:5]] == LIBRARY_HEADERS
    cells = row.locator("[role=gridcell]")
    passages = int(cells.nth(3).inner_text().strip())
    cells.first.click()
    font = cells.first.evaluate("(cell) => getComputedStyle(cell).fontFamily")
    assert "mono" not in font.lower(), font  # the page's font, not a typewriter's
    article = page.locator("#article .nqa-article")
    expect(article.locator("h3")).to_contain_text("Construire Hai Phong")
    expect(article.locator(".nqa-passage")).to_have_count(passages)
    expect(article.locator(".nqa-meta")).to_contain_text("French · 2024-11-14")
    context.close()


FERRY = """Hai Phong opened a fast ferry line to Cat Ba island on 2 June 2025.
The ferry crosses Lan Ha bay in forty minutes and carries three hundred passengers.
The city expects half a million travellers on the line in its first year."""


def test_a_feed_added_in_the_library_answers_questions_and_cites_its_link(page: Page) -> None:
    with serving() as web:
        article = "".join(f"<p>{line}</p>" for line in FERRY.splitlines())
        web.routes["/news/ferry"] = Route(
            "<!doctype html><html><head><title>Ferry | Port News</title></head><body>"
            "<nav>Home · World · Sport</nav><article><h1>A ferry to Cat Ba</h1>"
            f"{article}</article><footer>© Port News</footer></body></html>".encode()
        )
        link = web.url("/news/ferry")
        web.routes["/rss"] = Route(
            "<?xml version='1.0'?><rss version='2.0'><channel><title>Port News</title>"
            f"<link>{web.base}/</link><item><title>A ferry to Cat Ba</title><link>{link}</link>"
            "<guid>ferry-1</guid><pubDate>Mon, 02 Jun 2025 08:00:00 GMT</pubDate></item>"
            "</channel></rss>".encode(),
            content_type="application/rss+xml",
        )
        page.get_by_role("tab", name="Library").click()
        page.locator("#web-url input, #web-url textarea").first.fill(web.url("/rss"))
        page.locator("#add-feed").click()
        expect(page.locator("#web-report")).to_contain_text("Subscribed")
        expect(page.locator("#web-report")).to_contain_text("1 added")
        expect(page.locator("#feeds")).to_contain_text("Port News")
        row = page.locator("#library [role=row]", has_text="A ferry to Cat Ba")
        expect(row).to_contain_text("2025-06-02")  # the entry's date
        page.locator("#web-url input, #web-url textarea").first.fill(
            "http://169.254.169.254/latest/meta-data/"
        )
        page.locator("#add-page").click()
        expect(page.locator("#web-report")).to_contain_text("link-local")
        page.get_by_role("tab", name="Chat").click()
        _ask(page, "How long does the fast ferry to Cat Ba take to cross Lan Ha bay?")
        expect(page.locator("#chat .bot").last).to_contain_text("[1]")
        expect(page.locator("#sources details").first).to_contain_text("forty minutes")
        expect(page.locator(f'#sources a[href="{link}"]').first).to_be_attached()
