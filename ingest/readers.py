"""Read an article file (txt, md, html, pdf) into plain text, refusing bad input with a reason."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED = {".txt": "text", ".md": "markdown", ".html": "html", ".htm": "html", ".pdf": "pdf"}


class SkipFile(Exception):
    """The file cannot be ingested; the message says why in a few words."""


@dataclass
class RawArticle:
    text: str
    # Metadata the format itself carries (HTML <title>, <meta> date, canonical URL ...).
    meta: dict[str, str] = field(default_factory=dict)


def find_files(paths: list[Path]) -> list[Path]:
    """Files under `paths` (recursing into folders), in a stable order; hidden files skipped."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found.append(path)
    return found


def read_article(path: Path, max_bytes: int) -> tuple[RawArticle, bytes]:
    """Read `path` into text (and its raw bytes, for hashing) or raise SkipFile with the reason."""
    kind = SUPPORTED.get(path.suffix.lower())
    if kind is None:
        raise SkipFile(
            f"unsupported type {path.suffix or '(no extension)'!r}; "
            f"supported: {', '.join(sorted(SUPPORTED))}"
        )
    if not path.exists():
        raise SkipFile("file not found")
    size = path.stat().st_size
    if size == 0:
        raise SkipFile("empty file")
    if size > max_bytes:
        raise SkipFile(
            f"too large ({size / 1048576:.1f} MB > {max_bytes / 1048576:.1f} MB; "
            "raise MAX_FILE_MB to allow it)"
        )
    data = path.read_bytes()
    if kind == "pdf":
        article = RawArticle(_pdf_text(data))
    else:
        text = decode_text(data)
        if kind == "html":
            article = _html(text)
        elif kind == "markdown":
            article = _markdown(text)
        else:
            article = RawArticle(text)
    if not article.text.strip():
        raise SkipFile(
            "no text in the file" if kind != "pdf" else "no extractable text (scanned PDF?)"
        )
    return article, data


_BOMS = [
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
]
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode_text(data: bytes) -> str:
    """Decode UTF-8 (or a BOM-marked UTF-16/32) text, refusing binary data."""
    encoding = "utf-8"
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, data = name, data[len(bom) :]
            break
    else:
        if b"\x00" in data[:8192]:
            raise SkipFile("binary file (contains NUL bytes)")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SkipFile(
            f"not valid {encoding.upper()} (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    controls = len(_CONTROL.findall(text[:65536]))
    if controls > max(8, len(text[:65536]) // 100):
        raise SkipFile("binary file (control characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


_MD_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_MD_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|`)")


def _markdown(text: str) -> RawArticle:
    """Markdown to plain lines: headings lose their '#', links keep their words."""
    heading = _MD_HEADING.search(text)
    plain = _MD_EMPHASIS.sub("", _MD_LINK.sub(r"\1", _MD_HEADING.sub(r"\1", text)))
    return RawArticle(plain, {"title": heading.group(1)} if heading else {})


def _html(html: str) -> RawArticle:
    import trafilatura

    from ingest.web import format_meta, saved

    fetched = saved(html)  # an article the app fetched (ingest.web): taken as it was saved
    if fetched is not None:
        return RawArticle(fetched.text, format_meta(fetched))

    doc = trafilatura.bare_extraction(
        html, include_comments=False, include_tables=True, with_metadata=True
    )
    if doc is None:
        return RawArticle("")
    data = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    meta = {
        key: str(data[key])
        for key in ("title", "date", "url", "sitename", "author")
        if data.get(key)
    }
    return RawArticle(str(data.get("text") or ""), meta)


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise SkipFile(f"unreadable PDF ({exc})") from None
    return "\n\n".join(_unwrap(p) for p in pages if p.strip())


def _unwrap(page: str) -> str:
    """Join the visual lines of a PDF page back into paragraphs."""
    out: list[str] = []
    for line in (raw.strip() for raw in page.split("\n")):
        if not line:
            out.append("")
        elif out and out[-1] and not out[-1].endswith((".", "!", "?", ":", "…")):
            out[-1] = out[-1][:-1] + line if out[-1].endswith("-") else f"{out[-1]} {line}"
        else:
            out.append(line)
    return "\n".join(out)
