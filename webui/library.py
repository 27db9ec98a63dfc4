"""The library tab: the table of indexed articles and the rules for uploads (size, type, count,
file names that stay inside DATA_DIR, atomic placement with the replaced file kept aside)."""

from __future__ import annotations

import html
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import BotError
from bot.index.store import Index
from bot.retrieval.articles import article_passages
from bot.retrieval.records import Hit
from bot.settings import Settings
from bot.text.language import language_name
from ingest.pipeline import FileResult
from ingest.readers import SUPPORTED
from webui.sources import safe_url

UPLOAD_TYPES = sorted(SUPPORTED)


LIBRARY_HEADERS = ["Title", "Language", "Date", "Passages", "Article id"]
FEED_HEADERS = ["Feed", "Title", "Last check (UTC)", "Articles", "Last error"]


def library_rows(articles: dict[str, dict[str, Any]]) -> list[list[Any]]:
    """Committed articles, newest first."""
    rows = [
        [
            str(rec.get("title") or doc_id),
            language_name(str(rec.get("lang", ""))),
            str(rec.get("date") or ""),
            int(rec.get("n_passages") or 0),
            doc_id,
        ]
        for doc_id, rec in articles.items()
        if rec.get("version")  # an article being written for the first time has none yet
    ]
    return sorted(rows, key=lambda r: (r[2], r[4]), reverse=True)


def article_html(record: dict[str, Any], passages: list[Hit]) -> str:
    """One article as the library opens it: what is known of it, then its cleaned text as the
    index holds it, passage by passage (what retrieval finds and the chat cites)."""
    about = [
        language_name(str(record.get("lang", ""))),
        str(record.get("date") or "date unknown"),
        str(record.get("publisher") or ""),
        str(record.get("author") or ""),
        _came_from(record),
        f"{len(passages)} passages",
    ]
    url = safe_url(str(record.get("source_url") or ""))
    link = (
        f' · <a href="{html.escape(url, quote=True)}" target="_blank" '
        f'rel="noopener noreferrer nofollow">source</a>'
        if url
        else ""
    )
    blocks = "".join(
        f'<section class="nqa-passage" data-n="{n}"><span class="nqa-pn">Passage {n}</span>'
        f'<div class="nqa-text">{html.escape(hit.text)}</div></section>'
        for n, hit in enumerate(passages, 1)
    )
    title = html.escape(str(record.get("title") or "Untitled"))
    facts = html.escape(" · ".join(a for a in about if a))
    return (
        f'<div class="nqa-article"><h3>{title}</h3><p class="nqa-meta">{facts}{link}</p>'
        f"{blocks}</div>"
    )


def _came_from(record: dict[str, Any]) -> str:
    """How an article from the web came (ingest.web): "" for a file."""
    if record.get("origin") == "feed":
        own = record.get("content_from") == "feed entry"
        return "from a feed" + (" (its entry's own text: the page could not be had)" if own else "")
    return "added by its address" if record.get("origin") == "url" else ""


def article_page(index: Index, doc_id: str) -> str:
    record = index.record(doc_id)
    if not record or not record.get("version"):
        return f"<p>⚠️ No article {html.escape(doc_id)} in the index.</p>"
    return article_html(record, article_passages(index, doc_id))


def language_choices(articles: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    codes = {str(rec.get("lang", "")) for rec in articles.values() if rec.get("version")} - {""}
    return sorted((language_name(code), code) for code in codes)


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


def place(src: Path, data_dir: Path, name: str) -> tuple[Path, Path | None]:
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


def take_back(dest: Path, previous: Path | None) -> None:
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
