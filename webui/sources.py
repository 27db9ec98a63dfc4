"""The sources panel as HTML: every retrieved passage, cited ones first, with the sentence each
citation rests on highlighted. Every piece of text from an article, a question or a model is
escaped on the way in.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.answering.records import Answer
from bot.retrieval.records import Hit
from bot.text.language import language_name
from bot.text.sentences import sentence_spans


def highlights(result: Answer) -> dict[int, list[tuple[int, int]]]:
    """For each supported answer sentence, the passage sentence it rests on (the citation
    check's evidence, bot.answering.support), by passage number; for a withheld reply, the
    passage sentences that came closest to its sentences, in the passages it cites."""
    spans: dict[int, list[tuple[int, int]]] = {}
    withheld = result.verdict == "unsupported"
    cited = {c.n for c in result.citations}
    for claim in result.claims:
        shown = claim.supported or (withheld and claim.evidence and claim.evidence[0].n in cited)
        for e in claim.evidence if shown else []:
            spans.setdefault(e.n, []).append((e.start, e.end))
    return {n: sorted(set(v)) for n, v in spans.items()}


def marked(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` escaped, with the spans wrapped in <mark>."""
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        out.append(html.escape(text[pos:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def safe_url(url: str) -> str:
    return url if re.match(r"^https?://[^\s\"'<>]+$", url or "") else ""


OPEN_WHILE_READING = 5


@dataclass
class SourcesView:
    """What the sources panel shows; `phase` is retrieving, answering, done or refused."""

    passages: list[Hit] = field(default_factory=list)
    context_n: int = 0
    phase: str = "answering"
    cited: list[int] = field(default_factory=list)
    highlights: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    show_scores: bool = False
    lang: str = ""  # the question's: cited sentences in another language can be translated


def sources_html(view: SourcesView) -> str:
    if view.phase == "retrieving":
        return '<div class="nqa-sources"><p class="nqa-head">Searching the articles…</p></div>'
    if not view.passages:
        return '<div class="nqa-sources"><p class="nqa-head">No passage matched.</p></div>'
    n_all = len(view.passages)
    heads = {
        "answering": f"{n_all} passages found; the model reads the first {view.context_n}."
        if view.context_n < n_all
        else f"The model reads these {n_all} passages.",
        "done": f"{len(view.cited)} of {n_all} passages cited.",
        "refused": f"None of these {n_all} passages answers the question.",
    }
    cards = [_card(view, n, hit) for n, hit in enumerate(view.passages, 1)]
    # cited passages first, then the rest (collapsed); within each, an article's passages
    # together, articles in the order of their first passage
    first: dict[tuple[bool, str], int] = {}
    for (cited, n, _), hit in zip(cards, view.passages, strict=True):
        first.setdefault((cited, hit.doc_id), n)
    docs = [hit.doc_id for hit in view.passages]
    cards.sort(key=lambda item: (not item[0], first[(item[0], docs[item[1] - 1])], item[1]))
    body = "".join(card for _, _, card in cards)
    head = html.escape(heads.get(view.phase, ""))
    return f'<div class="nqa-sources"><p class="nqa-head">{head}</p>{body}</div>'


def _card(view: SourcesView, n: int, hit: Hit) -> tuple[bool, int, str]:
    meta = hit.meta
    cited = n in view.cited
    # while answering, the passages the model reads are open, unless it reads a whole article
    is_open = cited or (view.phase == "answering" and n <= view.context_n <= OPEN_WHILE_READING)
    role = "cited" if cited else "read" if n <= view.context_n else "also found"
    about = [
        meta.title or "Untitled",
        language_name(meta.lang),
        *([meta.date] if meta.date else []),
    ]
    details = []
    if view.show_scores:
        ranks = f"dense #{hit.dense_rank or '-'}, lexical #{hit.lexical_rank or '-'}"
        details.append(f"score {hit.score:.4f} ({ranks})")
    url = safe_url(meta.source_url)
    link = (
        f'<a href="{html.escape(url, quote=True)}" target="_blank" '
        f'rel="noopener noreferrer nofollow">source</a>'
        if url
        else ""
    )
    also = ""
    if hit.alternatives:
        names = ", ".join(
            f"{language_name(a.meta.lang)} ({a.meta.title or 'untitled'})" for a in hit.alternatives
        )
        also = f'<p class="nqa-alt">Also in {html.escape(names)}</p>'
    spans = view.highlights.get(n, [])
    text = marked(hit.text, spans)
    translate = _translate(view.lang, hit, spans) if cited else ""
    facts = " · ".join([*(html.escape(d) for d in details), *([link] if link else [])])
    return (
        cited,
        n,
        f'<details id="nqa-src-{n}" class="nqa-src {"nqa-cited" if cited else "nqa-uncited"}" '
        f'data-doc="{html.escape(hit.doc_id, quote=True)}" '
        f'data-n="{n}"{" open" if is_open else ""}>'
        f'<summary><span class="nqa-n">[{n}]</span> '
        f'<span class="nqa-head-text">{html.escape(heading(hit, spans))}</span> '
        f'<span class="nqa-status">{role}</span>'
        f'<span class="nqa-about">{html.escape(" · ".join(about))}</span></summary>'
        + (f'<p class="nqa-meta">{facts}</p>' if facts else "")
        + f'<div class="nqa-text">{text}</div>{translate}{also}</details>',
    )


def _translate(lang: str, hit: Hit, spans: list[tuple[int, int]]) -> str:
    """A button that shows the highlighted sentences in the question's language (the page's
    script asks the server: webui.assets.TRANSLATE), when they are in another one."""
    if not spans or not lang or lang == hit.meta.lang or not language_name(lang, ""):
        return ""
    sentences = " ".join(" ".join(hit.text[a:b].split()) for a, b in spans)
    data = {"text": sentences, "from": hit.meta.lang, "to": lang}
    attrs = " ".join(f'data-{k}="{html.escape(v, quote=True)}"' for k, v in data.items())
    return (
        f'<div class="nqa-tr"><button type="button" class="nqa-translate" {attrs}>'
        f"Show in {html.escape(language_name(lang))}</button>"
        '<div class="nqa-translation" hidden></div></div>'
    )


HEADING_CHARS = 160


def heading(hit: Hit, spans: list[tuple[int, int]]) -> str:
    """What a card holds, in a line: the sentence the answer rests on (the first highlight),
    else the passage's first sentence that is not the article's title."""
    text = hit.text
    if spans:
        start, end = spans[0]
    else:
        title = hit.meta.title.strip()
        found = [(a, b) for a, b in sentence_spans(text, hit.meta.lang) if text[a:b] != title]
        start, end = found[0] if found else (0, len(text))
    line = " ".join(text[start:end].split())
    return line if len(line) <= HEADING_CHARS else line[: HEADING_CHARS - 1].rstrip() + "…"
