"""Take the README's screenshots of a running app: ask one question, wait for the cited answer,
open the translation of its evidence; then the same on a 400 px screen with the sources open.

.venv/bin/python app.py &     # the real embedder and LLM
.venv/bin/python -m tests.screenshot http://127.0.0.1:7860/ docs/screenshot.png docs/narrow.png

Thai titles need a Thai font on the machine (Debian: fonts-thai-tlwg).
"""

from __future__ import annotations

import sys
import time

from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.test_browser import CHROMIUM, FLAGS

QUESTION = "What did To Lam ask of Hai Phong?"
WAIT_MS = 600_000


def _answered(page: Page, url: str, question: str) -> tuple[float, float]:
    page.goto(url)
    expect(page.locator("#status")).to_contain_text("ready", timeout=WAIT_MS)
    started = time.perf_counter()
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    expect(page.locator("#sources details").first).to_be_visible(timeout=60_000)
    sources = time.perf_counter() - started
    expect(page.locator("#sources mark").first).to_be_visible(timeout=WAIT_MS)
    return sources, time.perf_counter() - started


def _translated(page: Page) -> None:
    button = page.locator("#sources details.nqa-cited button.nqa-translate").first
    if button.count():
        button.click()
        expect(page.locator("#sources .nqa-translated").first).to_be_visible(timeout=WAIT_MS)


def desktop(browser: Browser, url: str, out: str, question: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    sources, total = _answered(page, url, question)
    _translated(page)
    page.wait_for_timeout(500)
    page.screenshot(path=out)
    print(f"sources shown after {sources:.1f} s, cited answer after {total:.1f} s -> {out}")
    page.close()


def narrow(browser: Browser, url: str, out: str, question: str) -> None:
    page = browser.new_page(viewport={"width": 400, "height": 860})
    _answered(page, url, question)
    page.locator("#sources-toggle").click()
    _translated(page)
    page.wait_for_timeout(500)
    page.screenshot(path=out)
    print(f"400 px -> {out}")
    page.close()


def main(url: str, out: str, out_narrow: str = "", question: str = QUESTION) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        desktop(browser, url, out, question)
        if out_narrow:
            narrow(browser, url, out_narrow, question)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
