"""Each article read once: the embedded LLM server reads every indexed article's prompt prefix
in the background and keeps it on disk (bot.models.llm_server), so questions about it start
in seconds; then the LLM translates every article not in PIVOT_LANGUAGE (bot.answering.pivot)
and the server reads the translations' prefixes too. Questions come first: the warm-up waits
while this process answers one (before each sentence it translates), and the server stops a
read between two steps when a request from anywhere waits.

    python -m bot.warmup      # read and translate every article now; a line per article

With LLM_BASE_URL (vLLM reuses prefixes by itself) the articles are translated, no prefix is
read; with the fake LLM nothing is done.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from bot.answering.article import (
    answer_prefix_label,
    answer_prefix_messages,
    article_sections,
    prefix_messages,
)
from bot.answering.pivot import (
    PivotProgress,
    sentence_translations,
    translate_all,
    translated_section,
)
from bot.deps import Deps, build_deps, stop_on_sigterm
from bot.errors import BotError
from bot.models.llm import Message, llm_kind
from bot.models.prefix_server import PrefixServer
from bot.retrieval.articles import Section
from bot.text.language import NAMES, language_name

log = logging.getLogger(__name__)
READ_TOKENS = 1024  # tokens read per request (the server stops earlier when a question waits)


@dataclass
class Progress:
    total: int = 0  # sections to read
    done: int = 0
    current: str = ""  # the article being read
    error: str = ""
    finished: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # label -> seconds spent reading
    translation: PivotProgress | None = None  # the articles' translation, once it began
    prompt: str = ""  # the language whose passage prompt is being read


class Warmup:
    """Reads the prefixes of every committed article's sections, best-effort, in a thread."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.progress = Progress()
        self._again = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.deps.prefix_server is not None or self.translating

    @property
    def translating(self) -> bool:
        """Whether articles are translated into PIVOT_LANGUAGE (by a real model)."""
        settings = self.deps.settings
        return settings.pivot_language in NAMES and llm_kind(settings) != "fake"

    def start(self) -> None:
        """Start reading in the background (again after `kick()`, e.g. when articles were added)."""
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="warmup", daemon=True)
        self._again.set()
        self._thread.start()

    def kick(self) -> None:
        self._again.set()

    def stop(self) -> None:
        self._stop.set()
        self._again.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._again.wait()
            self._again.clear()
            if self._stop.is_set():
                return
            try:
                self.run()
            except BotError as exc:
                self.progress.error = str(exc)
                log.warning("warm-up stopped: %s", exc)

    def sections(self) -> list[Section]:
        found: list[Section] = []
        for doc_id, record in sorted(self.deps.index.articles().items()):
            if record.get("version") and not record.get("pending"):
                found += article_sections(self.deps, doc_id)
        return found

    def translated_sections(self, parts: list[Section]) -> list[Section]:
        """The sections of `parts` whose translation is stored whole, when answering reads
        translations (READ_TRANSLATION)."""
        if not self.translating or not self.deps.settings.read_translation:
            return []
        target = self.deps.settings.pivot_language
        found = (translated_section(self.deps.index, s, target) for s in parts)
        return [t[0] for t in found if t is not None]

    def run(self) -> Progress:
        """Read every section not read yet, translate the articles not translated yet, read
        their translations' sections; drop the stored prefixes of changed or removed ones."""
        parts = self.sections()
        self.progress = progress = Progress(total=len(parts))
        server = self.deps.prefix_server
        languages = answer_languages(parts)
        prompts = [answer_prefix_label(lang) for lang in languages]
        if server is not None:
            server.retain([s.label for s in [*parts, *self.translated_sections(parts)]] + prompts)
            self._read(server, parts, progress)
            self._read_prompts(server, languages, progress)
        if self.translating and not self._stop.is_set():
            progress.translation = PivotProgress()
            translate_all(
                self.deps.index,
                self.deps.llm,
                self.deps.settings.pivot_language,
                progress.translation,
                self.deps.activity.wait_idle,
                self._stop,
            )
            self._embed_translations(parts)
            if server is not None:
                translated = self.translated_sections(parts)
                server.retain([s.label for s in [*parts, *translated]] + prompts)
                progress.total += len(translated)
                self._read(server, translated, progress)
        progress.current, progress.finished = "", True
        return progress

    def _read(self, server: PrefixServer, parts: list[Section], progress: Progress) -> None:
        for section in parts:
            if self._stop.is_set():
                break
            progress.current = section.passages[0].meta.title or section.doc_id
            started = time.perf_counter()
            self._read_prefix(server, prefix_messages(section), section.label)
            self._embed_sentences(section)
            progress.timings[section.label] = time.perf_counter() - started
            progress.done += 1
            log.info(
                "article %s ready (%d of %d, %.0f s)",
                section.label,
                progress.done,
                progress.total,
                progress.timings[section.label],
            )

    def _read_prompts(self, server: PrefixServer, languages: list[str], progress: Progress) -> None:
        """The passage prompt's prefix in each of `languages` (the reading after an article
        gives no supported answer: ~230 tokens, about 5 s on two cores, not read per question)."""
        for lang in languages:
            if self._stop.is_set():
                break
            progress.prompt = language_name(lang)
            label = answer_prefix_label(lang)
            started = time.perf_counter()
            self._read_prefix(server, answer_prefix_messages(lang), label)
            progress.timings[label] = time.perf_counter() - started
        progress.prompt = ""

    def _read_prefix(self, server: PrefixServer, messages: list[Message], label: str) -> None:
        """Have the server read the prefix `messages` whole, a step at a time, each step once
        no question is being answered here."""
        while not self._stop.is_set():
            self.deps.activity.wait_idle()
            if server.prefix(messages, label, read=READ_TOKENS).done:
                return

    def _embed_sentences(self, section: Section) -> None:
        """The citation check's vectors of the article's sentences, computed now, not during
        the first answer (bot.answering.support)."""
        sentences = [h.text[a:b] for h in section.passages for a, b in h.sentences()]
        if sentences and self.deps.sentences is not None:
            self.deps.sentences(sentences)

    def _embed_translations(self, parts: list[Section]) -> None:
        """The citation check's vectors of the articles' translated sentences (an answer in
        PIVOT_LANGUAGE is checked against them too), computed now."""
        if self.deps.sentences is None:
            return
        passages = [h for s in parts for h in s.passages]
        target = self.deps.settings.pivot_language
        texts = list(sentence_translations(self.deps.index, passages, target).values())
        if texts:
            self.deps.sentences(texts)

    def status(self) -> str:
        """One line for the status bar; "" when there is nothing to say."""
        p = self.progress
        if not self.enabled or (p.finished and not p.error):
            return ""
        if p.error:
            return f"articles not prepared ({p.error})"
        t = p.translation
        if t is not None and t.done < t.total:
            into = language_name(t.target)
            return f"translating {t.done + 1} of {t.total} articles into {into} ({t.current[:60]})"
        if p.prompt:
            return f"preparing the answer prompt in {p.prompt}"
        if p.total:
            return f"preparing {p.done + 1} of {p.total} articles ({p.current[:60]})"
        return "preparing the articles"


def answer_languages(parts: list[Section]) -> list[str]:
    """The languages whose passage prompt is read in advance, likeliest first: those of the
    articles, then English, then every other language the prompts can name."""
    found = [s.passages[0].meta.lang for s in parts]
    return list(dict.fromkeys(lang for lang in [*found, "en", *NAMES] if lang in NAMES))


def main() -> None:
    stop_on_sigterm()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    deps = build_deps()
    try:
        warm = Warmup(deps)
        if not warm.enabled:
            print(
                "Nothing to prepare: the LLM is scripted (LLM_BACKEND=fake), or it is not the "
                "embedded server and PIVOT_LANGUAGE is none."
            )
            return
        progress = warm.run()
        for label, seconds in progress.timings.items():
            print(f"{label}: {seconds:.1f} s")
        if progress.translation is not None:
            for doc_id, seconds in progress.translation.timings.items():
                n = progress.translation.sentences.get(doc_id, 0)
                print(f"{doc_id}: {n} sentences translated in {seconds:.1f} s")
    finally:
        deps.close()


if __name__ == "__main__":
    main()
