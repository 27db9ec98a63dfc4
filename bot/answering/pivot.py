"""Each article in the pivot language too (PIVOT_LANGUAGE, English by default), translated
once by the configured LLM, sentence by sentence, so that every translated sentence points at
the sentence it translates.

The probes of issue 31 (the held-out questions about the French article, the product's own
article prompt) found the small model answers a different set of questions from the English
version of an article than from the original (fact recall 0.36 and 0.32 alone, 0.55 for the
better of the two). The translations serve BM25 (bot.retrieval.translated_words), the
sources panel's "Show in English", and, with READ_TRANSLATION, a reading when neither the
article nor the best passages give a supported answer (bot.answering.pipeline; off by
default: measured on the dev set's tune half, docs/evaluation.md).

The translations live in the index beside the passages (bot.index.store, collection
`<collection>-translations`, one record per sentence), are deleted with them, and are never
made twice for an unchanged article: a stopped run goes on from the first passage not stored.

    python -m bot.answering.pivot     # translate every article now; time and size per article
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.answering import guard
from bot.answering.prompts import render
from bot.answering.records import SentenceId
from bot.errors import BotError
from bot.index.lexical import fold
from bot.index.store import Index
from bot.models.llm import ChatModel, Message, llm_kind
from bot.retrieval.articles import Section, article_passages
from bot.retrieval.records import Hit
from bot.text.foreign import is_common
from bot.text.language import NAMES, language_name
from bot.text.sentences import sentence_spans

log = logging.getLogger(__name__)
_WRAPPING = re.compile(r'^\s*(?:translation\s*:\s*)?["“«„]?\s*(.*?)\s*["”»“]?\s*$', re.I | re.S)
_NUMBER = re.compile(r"\d+(?:[.,\s]\d{3})*(?:[.,]\d+)?")
_CAPITALISED = re.compile(r"(?<![\w'’-])[A-Z][\w'’-]+")
_OPENERS = '.!?:;"“«(-–—'
Span = tuple[int, int]


# -- one sentence --------------------------------------------------------------------------------
def translation_messages(text: str, source: str, target: str) -> list[Message]:
    return [
        {
            "role": "user",
            "content": render(
                "translate",
                text=guard.for_model(text.strip()),
                language=language_name(target),
                source=language_name(source, "foreign"),
            ),
        }
    ]


def cleaned(reply: str) -> str:
    """The translation without what small models wrap it in: a "Translation:" label, quotes."""
    match = _WRAPPING.match(reply.strip())
    return (match.group(1) if match else reply).strip()


def translate_sentence(llm: ChatModel, text: str, source: str, target: str) -> str:
    """`text` (in `source`) in `target`, as the model writes it ("" when it wrote nothing)."""
    max_tokens = min(600, 40 + len(text) // 2)  # a translation is about as long as its text
    return cleaned(llm.complete(translation_messages(text, source, target), max_tokens))


def _numbers(text: str) -> list[str]:
    """The figures of `text`, digits only ("1.500", "1,500" and "1 500" are one figure)."""
    return sorted(re.sub(r"\D", "", n) for n in _NUMBER.findall(text))


def _fold(text: str) -> str:
    """Lower-cased letters and digits only, without accents ("Hải Phòng" is "haiphong")."""
    return "".join(ch for ch in fold(text) if ch.isalnum())


def invented_names(original: str, translated: str, target: str) -> list[str]:
    """Names in `translated` that `original` does not hold: capitalised words inside a
    sentence that are rare in `target` (wordfreq) and are not in the original, whatever its
    accents and spaces ("Haiphong" is "Hai Phong"). On the shipped corpus the model wrote
    "Hefong" and "Hiphong" for Hai Phong from Thai; from French and German, none."""
    held = _fold(original)
    found = []
    for match in _CAPITALISED.finditer(translated):
        before = translated[: match.start()].rstrip()
        if not before or before[-1] in _OPENERS:  # a sentence's first word
            continue
        word = match.group()
        if is_common(word, target):
            continue
        folded = _fold(word)
        if folded not in held and folded.removesuffix("s") not in held:
            found.append(word)
    return found


def faithful(original: str, translated: str, target: str = "en") -> bool:
    """Whether a translation can stand for its sentence: it keeps every figure of it, names
    nothing the original does not (invented_names), and does not run on (a small model's
    translation that adds a note or repeats itself)."""
    if not translated.strip():
        return False
    if len(translated) > 3 * len(original) + 40:
        return False
    if invented_names(original, translated, target):
        return False
    return set(_numbers(original)) <= set(_numbers(translated))


def sentence_key(text: str) -> str:
    """Names a sentence whatever its spacing (the sources panel sends it with spaces folded)."""
    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


def wanted(target: str, lang: str) -> bool:
    """Whether an article in `lang` is translated into `target` ("none": nothing is)."""
    return target in NAMES and bool(lang) and lang != target


# -- reading the stored translations ---------------------------------------------------------
@dataclass(frozen=True)
class Aligned:
    """A passage (`original`) and its translation (`hit`): each of `pairs` maps a translated
    sentence's span in `hit.text` to the span of the sentence it translates in the original."""

    original: Hit
    hit: Hit
    pairs: list[tuple[Span, Span]] = field(default_factory=list)

    def original_span(self, start: int, end: int) -> Span:
        """The original sentence(s) that the translated text from `start` to `end` renders."""
        inside = [o for t, o in self.pairs if t[0] < end and start < t[1]]
        if not inside:
            return (0, 0)
        return min(o[0] for o in inside), max(o[1] for o in inside)


def aligned(original: Hit, stored: list[tuple[str, dict[str, Any]]], target: str) -> Aligned:
    """The passage's translation from its stored sentences (any order): the sentences in the
    order of the original, on its lines (a heading stays a line of its own)."""
    text, pairs, end = "", [], 0
    for translated, meta in sorted(stored, key=lambda s: int(s[1]["start"])):
        start = int(meta["start"])
        if text:
            text += "\n" * min(2, original.text.count("\n", end, start)) or " "
        pairs.append(((len(text), len(text) + len(translated)), (start, int(meta["end"]))))
        text += translated
        end = int(meta["end"])
    hit = dataclasses.replace(
        original,
        id=f"{original.id}>{target}",
        text=text,
        meta=dataclasses.replace(original.meta, lang=target),
        alternatives=[],
    )
    return Aligned(original, hit, pairs)


def _stored(index: Index, doc_id: str, version: str, target: str) -> dict[str, list[Any]]:
    """The stored sentences of an article's version, by passage id."""
    where = {"$and": [{"doc_id": doc_id}, {"version": version}, {"lang": target}]}
    found: dict[str, list[Any]] = {}
    for text, meta in index.translated(where):
        found.setdefault(str(meta["passage_id"]), []).append((text, meta))
    return found


def _whole(hit: Hit, stored: list[Any]) -> bool:
    return len({int(m["start"]) for _, m in stored}) >= len(hit.sentences())


def translated_passages(index: Index, passages: list[Hit], target: str) -> list[Aligned] | None:
    """The translations of one article's `passages`, in their order; None when any of them is
    not (yet) stored whole, or the article is in `target` already."""
    if not passages or not wanted(target, passages[0].meta.lang):
        return None
    meta = passages[0].meta
    stored = _stored(index, meta.doc_id, meta.version, target)
    if not all(_whole(p, stored.get(p.id, [])) for p in passages):
        return None
    return [aligned(p, stored[p.id], target) for p in passages]


def translated_section(
    index: Index, section: Section, target: str
) -> tuple[Section, list[Aligned]] | None:
    """The section in `target`, its passages translated, and how they align with the
    originals; None when that is not stored."""
    found = translated_passages(index, section.passages, target)
    if found is None:
        return None
    return dataclasses.replace(section, passages=[a.hit for a in found], translated=target), found


def stored_translation(index: Index, text: str, source: str, target: str) -> str | None:
    """Sentences of an article (as they stand in it) in `target`, from the stored translations;
    None unless every one of them is stored, faithfully translated."""
    sentences = [text[a:b] for a, b in sentence_spans(text, source) if text[a:b].strip()]
    keys = [sentence_key(s) for s in sentences]
    if not keys:
        return None
    where = {"$and": [{"key": {"$in": sorted(set(keys))}}, {"lang": target}]}
    found = {m["key"]: t for t, m in index.translated(where) if m.get("faithful")}
    if not all(k in found for k in keys):
        return None
    return " ".join(found[k] for k in keys)


def sentence_translations(index: Index, passages: list[Hit], target: str) -> dict[SentenceId, str]:
    """The stored, faithful translations into `target` of the sentences of `passages` (those
    in another language), by (passage id, start, end) of the sentence they translate."""
    ids = sorted({p.id for p in passages if wanted(target, p.meta.lang)})
    if not ids:
        return {}
    where = {"$and": [{"passage_id": {"$in": ids}}, {"lang": target}]}
    return {
        (str(m["passage_id"]), int(m["start"]), int(m["end"])): text
        for text, m in index.translated(where)
        if m.get("faithful")
    }


# -- making them ---------------------------------------------------------------------------------
@dataclass
class PivotProgress:
    target: str = ""
    total: int = 0  # articles to translate
    done: int = 0
    current: str = ""  # the article being translated
    timings: dict[str, float] = field(default_factory=dict)  # doc id -> seconds
    sentences: dict[str, int] = field(default_factory=dict)  # doc id -> sentences translated


def articles_to_translate(index: Index, target: str) -> list[str]:
    """Committed articles in another language than `target` whose translation is not stored
    whole, by id."""
    todo = []
    for doc_id, record in sorted(index.articles().items()):
        if not record.get("version") or record.get("pending"):
            continue
        if not wanted(target, str(record.get("lang") or "")):
            continue
        passages = article_passages(index, doc_id)
        if passages and translated_passages(index, passages, target) is None:
            todo.append(doc_id)
    return todo


def translate_article(
    index: Index,
    llm: ChatModel,
    doc_id: str,
    target: str,
    wait: Callable[[], object] = lambda: None,
    stop: threading.Event | None = None,
) -> int:
    """Translate the passages of one article not stored yet, each stored once all its sentences
    are (so that a stopped run leaves no passage half-translated); the sentences translated.
    `wait()` is called before each sentence (questions first)."""
    passages = article_passages(index, doc_id)
    if not passages or not wanted(target, passages[0].meta.lang):
        return 0
    meta = passages[0].meta
    stored = _stored(index, doc_id, meta.version, target)
    made = 0
    for hit in passages:
        if _whole(hit, stored.get(hit.id, [])):
            continue
        ids, texts, metas = [], [], []
        for i, (start, end) in enumerate(hit.sentences()):
            if stop is not None and stop.is_set():
                return made
            wait()
            original = hit.text[start:end]
            translated = translate_sentence(llm, original, hit.meta.lang, target)
            ok = faithful(original, translated, target)
            if not ok:
                log.info("translation of %s#%d not used: %r", hit.id, i, translated[:200])
            ids.append(f"{hit.id}>{target}#{i}")
            texts.append(translated if ok else original)
            metas.append(
                {
                    "doc_id": doc_id,
                    "version": hit.meta.version,
                    "passage_id": hit.id,
                    "lang": target,
                    "source_lang": hit.meta.lang,
                    "start": start,
                    "end": end,
                    "key": sentence_key(original),
                    "faithful": ok,
                }
            )
        if ids:
            if drop_stale(index, doc_id, hit.meta.version):
                return made  # the article changed meanwhile: the next run does its new version
            index.put_translations(ids, texts, metas)
            made += len(ids)
    return made


def drop_stale(index: Index, doc_id: str, version: str) -> bool:
    """Whether `version` is no longer the article's committed one (ingestion wrote another or
    removed it while it was being translated); its stored sentences are then deleted."""
    record = index.record(doc_id) or {}
    if record.get("version") == version and not record.get("pending"):
        return False
    index.translations.delete(where={"$and": [{"doc_id": doc_id}, {"version": version}]})
    return True


def translate_all(
    index: Index,
    llm: ChatModel,
    target: str,
    progress: PivotProgress | None = None,
    wait: Callable[[], object] = lambda: None,
    stop: threading.Event | None = None,
) -> PivotProgress:
    """Translate every article not stored whole in `target`; how it went."""
    progress = progress or PivotProgress()
    todo = articles_to_translate(index, target)
    progress.target, progress.total, progress.done = target, len(todo), 0
    for doc_id in todo:
        if stop is not None and stop.is_set():
            break
        record = index.record(doc_id) or {}
        progress.current = str(record.get("title") or doc_id)
        started = time.perf_counter()
        try:
            progress.sentences[doc_id] = translate_article(index, llm, doc_id, target, wait, stop)
        except BotError as exc:  # the model failed on this article: the next run tries again
            log.warning("could not translate %s: %s", doc_id, exc)
        progress.timings[doc_id] = time.perf_counter() - started
        progress.done += 1
        log.info(
            "article %s translated into %s (%d of %d, %.0f s)",
            doc_id,
            target,
            progress.done,
            progress.total,
            progress.timings[doc_id],
        )
    progress.current = ""
    return progress


def stored_size(index: Index, doc_id: str) -> int:
    """Characters of an article's stored translation with its metadata (roughly its bytes)."""
    return sum(
        len(text.encode("utf-8")) + len(str(meta))
        for text, meta in index.translated({"doc_id": doc_id})
    )


def main() -> None:
    from bot.deps import build_deps, stop_on_sigterm

    stop_on_sigterm()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    deps = build_deps()
    try:
        target = deps.settings.pivot_language
        if target not in NAMES:
            print("PIVOT_LANGUAGE is none: nothing to translate.")
            return
        if llm_kind(deps.settings) == "fake":
            print("Nothing to translate: the LLM is scripted (LLM_BACKEND=fake).")
            return
        progress = translate_all(deps.index, deps.llm, target)
        for doc_id, seconds in progress.timings.items():
            n = progress.sentences.get(doc_id, 0)
            size = stored_size(deps.index, doc_id)
            print(f"{doc_id}: {n} sentences in {seconds:.0f} s, {size / 1024:.1f} KB stored")
        if not progress.timings:
            print(f"Every article is stored in {language_name(target)} already.")
    finally:
        deps.close()


if __name__ == "__main__":
    main()
