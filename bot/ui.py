"""The web UI's logic as pure functions: app.py wires them to Gradio, tests call them directly.

Everything shown as HTML is built here, and every piece of text that comes from an article,
a question or a model is escaped on the way in.
"""

from __future__ import annotations

import html
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import BotError
from bot.language import NAMES
from bot.retrieval import Hit
from bot.settings import Settings
from ingest.chunking import split_sentences
from ingest.readers import SUPPORTED

EXAMPLES = [
    "What did To Lam ask of Hai Phong?",
    "Quels sont les objectifs de Hai Phong pour 2030 ?",
    "Welche drei historischen Perioden stellt der Workshop dar?",
    "What makes Hai Phong an international connection center?",
]
UPLOAD_TYPES = sorted(SUPPORTED)

_MARKER = re.compile(r"\s*\[(\d+)\]")
# a sentence ends at . ! ? followed by space, a marker or the end ("gov.vn", "3.5" go on)
_ANSWER_SENTENCE = re.compile(
    r"(?:[^.!?。\n]|[.!?](?=[^\s\[.!?]))*(?:[.!?。]+(?:\s*\[\d+\])*|\n|$)"
)


# -- serving -------------------------------------------------------------------------------------
@dataclass
class LaunchOptions:
    host: str
    port: int
    auth: list[tuple[str, str]] | None
    max_file_size: str


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def launch_options(settings: Settings) -> LaunchOptions:
    """Where and how to serve; off localhost only with a username and password."""
    user = settings.ui_username or ""
    password = settings.ui_password.get_secret_value() if settings.ui_password else ""
    if bool(user) != bool(password):
        raise BotError("Set both UI_USERNAME and UI_PASSWORD, or neither.")
    if not is_loopback(settings.ui_host) and not user:
        raise BotError(
            f"UI_HOST={settings.ui_host} would let other machines use the chat: set UI_USERNAME "
            "and UI_PASSWORD as well, or keep UI_HOST=127.0.0.1."
        )
    return LaunchOptions(
        host=settings.ui_host,
        port=settings.ui_port,
        auth=[(user, password)] if user else None,
        max_file_size=f"{int(settings.max_upload_mb * 1024 * 1024)}b",
    )


def answer_concurrency(settings: Settings) -> int:
    if settings.ui_concurrency:
        return settings.ui_concurrency
    remote = settings.llm_backend in ("openai", "fake") or (
        settings.llm_backend == "auto" and settings.llm_base_url
    )
    return 4 if remote else 1


# -- the answer and its sources ------------------------------------------------------------------
def claims_by_source(answer: str) -> dict[int, list[str]]:
    """Each sentence of the answer, without its markers, under every [n] it cites.

    A sentence with no marker of its own belongs to the next marker of its paragraph (models
    often cite once at the end of a paragraph); a trailing uncited sentence stays unfiled.
    """
    claims: dict[int, list[str]] = {}
    waiting: list[str] = []
    for match in _ANSWER_SENTENCE.finditer(answer):
        sentence = match.group(0)
        numbers = list(dict.fromkeys(int(n) for n in _MARKER.findall(sentence)))
        claim = _MARKER.sub("", sentence).strip()
        if not numbers:
            waiting = [*waiting, claim] if claim else [] if "\n" in sentence else waiting
            continue
        for n in numbers:
            claims.setdefault(n, []).extend([*waiting, claim] if claim else waiting)
        waiting = []
    return claims


def sentence_spans(text: str, lang: str = "") -> list[tuple[int, int]]:
    """(start, end) of each sentence of a passage, white space trimmed."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for line in text.split("\n"):
        for start, end in split_sentences(line, lang):
            piece = line[start:end]
            left = len(piece) - len(piece.lstrip())
            right = len(piece.rstrip())
            if right > left:
                spans.append((offset + start + left, offset + start + right))
        offset += len(line) + 1
    return spans


Similarity = Callable[[list[str], list[str]], np.ndarray]


def supporting_spans(
    text: str, lang: str, claims: list[str], similarity: Similarity, title: str = ""
) -> list[tuple[int, int]]:
    """For each claim, the passage sentence most similar to it (any language); a line that
    repeats the article's title is never one."""
    spans = [(s, e) for s, e in sentence_spans(text, lang) if text[s:e] != title.strip()]
    if not spans or not claims:
        return []
    scores = similarity(claims, [text[s:e] for s, e in spans])
    best = {spans[int(np.argmax(row))] for row in np.atleast_2d(scores)}
    return sorted(best)


def embedding_similarity(
    embed_query: Callable[[str], np.ndarray], embed_passages: Callable[[list[str]], np.ndarray]
) -> Similarity:
    def similarity(claims: list[str], sentences: list[str]) -> np.ndarray:
        q = np.stack([embed_query(c) for c in claims])
        p = embed_passages(sentences)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-9)
        p = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-9)
        return np.asarray(q @ p.T)

    return similarity


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


def _safe_url(url: str) -> str:
    return url if re.match(r"^https?://[^\s\"'<>]+$", url or "") else ""


def language_label(code: str) -> str:
    return NAMES.get(code, code or "unknown language")


@dataclass
class SourcesView:
    """What the sources panel shows; `phase` is retrieving, answering, done or refused."""

    passages: list[Hit] = field(default_factory=list)
    context_n: int = 0
    phase: str = "answering"
    cited: list[int] = field(default_factory=list)
    highlights: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    show_scores: bool = False


def sources_html(view: SourcesView) -> str:
    if view.phase == "retrieving":
        return '<div class="nqa-sources"><p class="nqa-head">Searching the articles…</p></div>'
    if not view.passages:
        return '<div class="nqa-sources"><p class="nqa-head">No passage matched.</p></div>'
    n_all = len(view.passages)
    heads = {
        "answering": f"{n_all} passages found; the model reads the first {view.context_n}.",
        "done": f"{len(view.cited)} of {n_all} passages cited.",
        "refused": f"None of these {n_all} passages answers the question.",
    }
    cards = [_card(view, n, hit) for n, hit in enumerate(view.passages, 1)]
    # cited passages first, in the order of their numbers; the rest collapsed below
    cards.sort(key=lambda item: (not item[0], item[1]))
    body = "".join(card for _, _, card in cards)
    head = html.escape(heads.get(view.phase, ""))
    return f'<div class="nqa-sources"><p class="nqa-head">{head}</p>{body}</div>'


def _card(view: SourcesView, n: int, hit: Hit) -> tuple[bool, int, str]:
    meta = hit.meta
    cited = n in view.cited
    is_open = cited or (view.phase == "answering" and n <= view.context_n)
    if view.phase == "done" and cited:
        status = "cited"
    elif view.phase == "answering" and n <= view.context_n:
        status = "read by the model"
    elif n <= view.context_n:
        status = "read, not cited"
    else:
        status = "retrieved, not read"
    details = [language_label(str(meta.get("lang", ""))), str(meta.get("date") or "no date")]
    if view.show_scores:
        ranks = f"dense #{hit.dense_rank or '-'}, lexical #{hit.lexical_rank or '-'}"
        details.append(f"score {hit.score:.4f} ({ranks})")
    url = _safe_url(str(meta.get("source_url", "")))
    link = (
        f' · <a href="{html.escape(url, quote=True)}" target="_blank" '
        f'rel="noopener noreferrer nofollow">source</a>'
        if url
        else ""
    )
    also = ""
    if hit.alternatives:
        names = ", ".join(
            f"{language_label(str(a.meta.get('lang', '')))} ({a.doc_id})" for a in hit.alternatives
        )
        also = f'<p class="nqa-alt">Also in {html.escape(names)}</p>'
    text = marked(hit.text, view.highlights.get(n, []))
    title = html.escape(str(meta.get("title") or hit.doc_id))
    return (
        cited,
        n,
        f'<details class="nqa-src {"nqa-cited" if cited else "nqa-uncited"}" data-n="{n}"'
        f'{" open" if is_open else ""}><summary><span class="nqa-n">[{n}]</span> '
        f'<span class="nqa-title">{title}</span> <span class="nqa-status">{status}</span>'
        f'</summary><p class="nqa-meta">{html.escape(" · ".join(details))}{link} · '
        f"{html.escape(hit.doc_id)}</p>"
        f'<div class="nqa-text">{text}</div>{also}</details>',
    )


# -- library -------------------------------------------------------------------------------------
LIBRARY_HEADERS = ["Title", "Language", "Date", "Passages", "Article id"]


def library_rows(articles: dict[str, dict[str, Any]]) -> list[list[Any]]:
    """Committed articles, newest first."""
    rows = [
        [
            str(rec.get("title") or doc_id),
            language_label(str(rec.get("lang", ""))),
            str(rec.get("date") or ""),
            int(rec.get("n_passages") or 0),
            doc_id,
        ]
        for doc_id, rec in articles.items()
        if rec.get("version")  # an article being written for the first time has none yet
    ]
    return sorted(rows, key=lambda r: (r[2], r[4]), reverse=True)


def language_choices(articles: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    codes = {str(rec.get("lang", "")) for rec in articles.values() if rec.get("version")} - {""}
    return sorted((language_label(code), code) for code in codes)


# -- uploads -------------------------------------------------------------------------------------
def safe_name(name: str) -> str:
    """A plain file name for an upload: no folders, no leading dots, no odd characters."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name or ""))[-1]
    base = re.sub(r"[^\w.\- ]", "_", base).strip().lstrip(".").strip()
    stem, suffix = Path(base).stem, Path(base).suffix
    if not stem.strip("._- "):
        raise BotError(f"{name!r} is not a usable file name.")
    return base[: 120 - len(suffix)].rstrip() + suffix if len(base) > 120 else base


@dataclass
class UploadPlan:
    accepted: list[tuple[Path, str]] = field(default_factory=list)  # (uploaded file, new name)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


def plan_uploads(
    files: list[Path], names: list[str], existing: list[Path], settings: Settings
) -> UploadPlan:
    """Which uploaded files may go into the library, under which names, and why not the rest.

    `files` are the uploaded copies, `names` the names the user gave them, `existing` the
    files already in DATA_DIR. A file may replace one of the same name (an update); a new
    file whose article id (its stem) is already taken by another file is refused.
    """
    plan = UploadPlan()
    limit = settings.max_upload_files
    if len(files) > limit:
        plan.rejected = [
            (n, f"{len(files)} files at once; the limit is {limit} (MAX_UPLOAD_FILES)")
            for n in names
        ]
        return plan
    taken = {p.stem: p.name for p in existing}
    batch: set[str] = set()
    max_bytes = int(settings.max_upload_mb * 1024 * 1024)
    for path, given in zip(files, names, strict=True):
        try:
            name = safe_name(given)
        except BotError as exc:
            plan.rejected.append((given, str(exc)))
            continue
        suffix = Path(name).suffix.lower()
        size = path.stat().st_size if path.is_file() else -1
        stem = Path(name).stem
        if suffix not in SUPPORTED:
            reason = f"unsupported type {suffix or '(none)'}; accepted: {', '.join(UPLOAD_TYPES)}"
        elif size < 0:
            reason = "the upload did not arrive"
        elif size == 0:
            reason = "empty file"
        elif size > max_bytes:
            reason = (
                f"{size / 1048576:.1f} MB; the limit is {settings.max_upload_mb:g} MB "
                "(MAX_UPLOAD_MB)"
            )
        elif stem in batch:
            reason = f"another file in this upload has the article id {stem!r}"
        elif stem in taken and taken[stem] != name:
            reason = f"article id {stem!r} is already used by {taken[stem]}; rename the file"
        else:
            batch.add(stem)
            plan.accepted.append((path, name))
            continue
        plan.rejected.append((given, reason))
    return plan
