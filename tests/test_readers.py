"""Reading each supported format, and refusing bad files with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.readers import SkipFile, read_article

MB = 1024 * 1024


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\t\n", "no text"),
        ("nul.txt", b"Hai Phong\x00\x01\x02\x00 binary", "binary file"),
        (
            "latin1.txt",
            "Résolution adoptée à Hải Phòng".encode("latin-1", "replace"),
            "not valid UTF-8",
        ),
        ("report.docx", b"PK\x03\x04 zip", "unsupported type '.docx'"),
        ("noext", b"text", "unsupported type '(no extension)'"),
        ("broken.pdf", b"%PDF-1.4 this is not a pdf", "unreadable PDF"),
    ],
)
def test_bad_files_are_refused_with_a_reason(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    with pytest.raises(SkipFile, match=reason.replace("(", r"\(").replace(")", r"\)")):
        read_article(_write(tmp_path, name, data), max_bytes=MB)


@pytest.mark.reliability
def test_files_over_the_size_limit_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "huge.txt", b"Hai Phong news. " * 70_000)
    with pytest.raises(SkipFile, match=r"too large \(1\.1 MB > 1\.0 MB; raise MAX_FILE_MB"):
        read_article(path, max_bytes=MB)


def test_utf16_with_bom_and_windows_newlines_are_read(tmp_path: Path) -> None:
    data = "\ufeffLigne un.\r\nLigne deux.".encode("utf-16-le")
    raw, _ = read_article(_write(tmp_path, "a.txt", data), max_bytes=MB)
    assert raw.text == "Ligne un.\nLigne deux."


def test_html_keeps_the_article_and_drops_scripts_and_navigation(tmp_path: Path) -> None:
    html = """<html><head><title>Port of Hai Phong grows</title>
    <meta property="og:url" content="https://example.vn/port-grows">
    <meta name="date" content="2025-03-02"><script>alert('x')</script></head>
    <body><nav><a href="/">Home</a> <a href="/news">News</a></nav>
    <article><h1>Port of Hai Phong grows</h1>
    <p>Container throughput at the port of Hai Phong rose by twelve percent last year,
    the city's port authority said on Monday in its annual report.</p>
    <p>The authority expects another rise as new berths open in Lach Huyen.</p></article>
    <footer>Copyright example.vn</footer><script>document.write('tracker')</script>
    </body></html>"""
    raw, _ = read_article(_write(tmp_path, "port.html", html.encode()), max_bytes=MB)
    assert "twelve percent" in raw.text and "Lach Huyen" in raw.text
    assert "alert" not in raw.text and "tracker" not in raw.text and "Home" not in raw.text
    assert raw.meta["title"] == "Port of Hai Phong grows"
    assert raw.meta["date"] == "2025-03-02"


def test_pdf_text_is_extracted_and_lines_unwrapped(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    path = tmp_path / "brief.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.drawString(72, 720, "The city of Hai Phong approved a new")
    pdf.drawString(72, 705, "seaport plan on Tuesday.")
    pdf.drawString(72, 680, "Work starts next year.")
    pdf.save()
    raw, _ = read_article(path, max_bytes=MB)
    assert "The city of Hai Phong approved a new seaport plan on Tuesday." in raw.text
    assert "Work starts next year." in raw.text  # every line of the page


def test_pdf_without_text_is_refused(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    path = tmp_path / "scan.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.rect(72, 72, 100, 100)
    pdf.save()
    with pytest.raises(SkipFile, match="no extractable text"):
        read_article(path, max_bytes=MB)


def test_markdown_heading_becomes_the_title_and_links_keep_their_words(tmp_path: Path) -> None:
    md = "# Hai Phong opens a bridge\n\nThe [bridge](https://x.vn/b) links **two** districts.\n"
    raw, _ = read_article(_write(tmp_path, "bridge.md", md.encode()), max_bytes=MB)
    assert raw.meta["title"] == "Hai Phong opens a bridge"
    assert "The bridge links two districts." in raw.text
