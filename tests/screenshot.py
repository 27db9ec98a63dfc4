"""Take the README's screenshot of a running app: ask one question, wait for the cited answer.

.venv/bin/python app.py &     # the real embedder and LLM
.venv/bin/python -m tests.screenshot http://127.0.0.1:7860/ docs/screenshot.png
"""

from __future__ import annotations

import sys
import time

from playwright.sync_api import expect, sync_playwright

from tests.test_browser import CHROMIUM, FLAGS


def main(url: str, out: str, question: str = "What did To Lam ask of Hai Phong?") -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        expect(page.locator("#status")).to_contain_text("ready", timeout=600_000)
        started = time.perf_counter()
        page.locator("#question textarea").fill(question)
        page.locator("#ask").click()
        expect(page.locator("#sources details").first).to_be_visible(timeout=60_000)
        sources = time.perf_counter() - started
        expect(page.locator("#sources mark").first).to_be_visible(timeout=600_000)
        total = time.perf_counter() - started
        page.wait_for_timeout(500)
        page.screenshot(path=out, full_page=True)
        print(f"sources shown after {sources:.1f} s, cited answer after {total:.1f} s -> {out}")
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
