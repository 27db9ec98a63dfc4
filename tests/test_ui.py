"""The web UI's logic without a server: webui/ (Backend, chat handlers, sources, uploads)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.answering.citations import claims_by_source
from bot.answering.records import Answer, Claim, Evidence
from bot.errors import BotError
from bot.models.embeddings import FakeEmbedder
from bot.models.fake_llm import FakeChat, purpose
from bot.models.llm import Message
from bot.models.vector_cache import VectorCache
from bot.retrieval.records import Hit, PassageMeta
from bot.text.sentences import sentence_spans
from tests.conftest import make_settings
from tests.fake_models import Dying, Endless, Silent
from webui.backend import Backend
from webui.chat import make_ask, make_respond, mark_stopped, unlinked
from webui.library import article_html, language_choices, library_rows, plan_uploads, safe_name
from webui.serving import answer_concurrency, launch_options
from webui.sources import SourcesView, highlights, marked, sources_html

QUESTION_EN = "What did To Lam ask of Hai Phong?"
HOSTILE = '<script>alert("x")</script><img src=x onerror="alert(1)">'


# -- serving -------------------------------------------------------------------------------------
def test_the_ui_serves_on_localhost_without_a_login_by_default(tmp_path: Path) -> None:
    options = launch_options(make_settings(tmp_path))
    assert (options.host, options.port, options.auth) == ("127.0.0.1", 7860, None)


@pytest.mark.reliability
def test_binding_beyond_localhost_requires_a_username_and_password(tmp_path: Path) -> None:
    with pytest.raises(BotError, match="UI_USERNAME and UI_PASSWORD"):
        launch_options(make_settings(tmp_path, ui_host="0.0.0.0"))
    with pytest.raises(BotError, match="both"):
        launch_options(make_settings(tmp_path, ui_host="0.0.0.0", ui_username="ann"))
    options = launch_options(
        make_settings(tmp_path, ui_host="0.0.0.0", ui_username="ann", ui_password="s3cret")
    )
    assert options.auth == [("ann", "s3cret")]
    assert launch_options(make_settings(tmp_path, ui_host="::1")).auth is None


def test_one_answer_at_a_time_on_the_embedded_llm_more_on_a_server(tmp_path: Path) -> None:
    assert answer_concurrency(make_settings(tmp_path)) == 1
    assert answer_concurrency(make_settings(tmp_path, llm_base_url="http://127.0.0.1:1/v1")) == 4
    assert answer_concurrency(make_settings(tmp_path, ui_concurrency=2)) == 2


# -- answer and sources --------------------------------------------------------------------------
def test_claims_are_filed_under_every_source_they_cite() -> None:
    text = "The city aims high [1]. It has a port [2][1]! Unmarked. Last one [3]"
    assert claims_by_source(text) == {
        1: ["The city aims high.", "It has a port!"],
        2: ["It has a port!"],
        3: ["Unmarked.", "Last one"],  # an unmarked sentence goes with the next marker
    }


def test_an_unmarked_sentence_does_not_cross_a_paragraph_or_end_unfiled() -> None:
    text = "First part. Cited part [1].\n\nOther paragraph. Its claim [2]. Trailing words."
    assert claims_by_source(text) == {
        1: ["First part.", "Cited part."],
        2: ["Other paragraph.", "Its claim."],
    }
    assert claims_by_source("No paragraph cites\n\nThis one does [1].") == {1: ["This one does."]}
    domain = "(Haiphong.gov.vn) - Growth was 3.5 percent.[1] Then more [2]."
    assert claims_by_source(domain) == {
        1: ["(Haiphong.gov.vn) - Growth was 3.5 percent."],
        2: ["Then more."],
    }


def test_sentence_spans_cover_each_sentence_of_each_line() -> None:
    text = "Erste Zeile. Zweiter Satz zum 70. Jahrestag.\n\n  Dritte Zeile ohne Punkt"
    pieces = [text[s:e] for s, e in sentence_spans(text, "de")]
    assert pieces == ["Erste Zeile.", "Zweiter Satz zum 70. Jahrestag.", "Dritte Zeile ohne Punkt"]


def test_marked_text_is_escaped_inside_and_outside_the_mark() -> None:
    text = f"before {HOSTILE} after"
    out = marked(text, [(7, 7 + len(HOSTILE))])
    assert "<script>" not in out and "<img" not in out
    assert out.startswith("before <mark>&lt;script&gt;") and out.endswith("</mark> after")


def _hit(n: int, **meta: Any) -> Hit:
    base = {
        "doc_id": f"doc{n}",
        "title": f"Title {n}",
        "lang": "fr",
        "date": "2024-11-14",
        "source_url": f"https://example.org/{n}",
    }
    return Hit(
        f"doc{n}:v:0000",
        f"Passage {n} text. Second sentence.",
        PassageMeta.from_chroma({**base, **meta}),
        0.03,
    )


def test_sources_show_cited_passages_open_and_first_the_rest_collapsed() -> None:
    view = SourcesView(
        [_hit(1), _hit(2), _hit(3)], context_n=2, phase="done", cited=[2], highlights={2: [(0, 15)]}
    )
    page = sources_html(view)
    assert "1 of 3 passages cited" in page
    cards = page.split("<details")[1:]
    assert 'data-n="2" open' in cards[0] and "nqa-cited" in cards[0]
    assert "<mark>Passage 2 text.</mark>" in cards[0]
    assert all(" open>" not in card for card in cards[1:])
    assert '"nqa-status">read<' in cards[1] and '"nqa-status">also found<' in cards[2]
    assert (
        'href="https://example.org/2"' in cards[0] and "Title 2 · French · 2024-11-14" in cards[0]
    )
    assert "score" not in page and ">doc2<" not in page  # no raw article id on show


def test_a_card_is_headed_by_what_it_holds_and_an_articles_passages_go_together() -> None:
    title = "Le titre de l'article"
    one = _hit(1, title=title)
    one.text = f"{title}\nLe port de Hai Phong grandit. Il accueille des navires."
    other, again = _hit(2), _hit(3, doc_id="doc1", title=title)
    view = SourcesView(
        [one, other, again], context_n=3, phase="done", cited=[2], highlights={2: [(16, 32)]}
    )
    cards = sources_html(view).split("<details")[1:]
    heads = [re.search(r'nqa-head-text">([^<]*)<', card).group(1) for card in cards]  # type: ignore[union-attr]
    assert heads == ["Second sentence.", "Le port de Hai Phong grandit.", "Passage 3 text."]
    assert [re.search(r'data-n="(\d)"', c).group(1) for c in cards] == ["2", "1", "3"]  # type: ignore[union-attr]


def test_while_answering_the_passages_the_model_reads_are_open() -> None:
    page = sources_html(SourcesView([_hit(1), _hit(2)], context_n=1, phase="answering"))
    assert "the model reads the first 1" in page
    assert 'data-n="1" open' in page and 'data-n="2">' in page
    assert "Searching" in sources_html(SourcesView(phase="retrieving"))
    assert "None of these 2 passages" in sources_html(
        SourcesView([_hit(1), _hit(2)], context_n=2, phase="refused")
    )


def test_scores_are_shown_when_asked() -> None:
    hit = _hit(1)
    hit.dense_rank, hit.lexical_rank = 2, None
    page = sources_html(SourcesView([hit], 1, "done", [1], show_scores=True))
    assert "score 0.0300 (dense #2, lexical #-)" in page


@pytest.mark.reliability
def test_hostile_titles_texts_and_links_are_inert() -> None:
    hit = _hit(1, title=HOSTILE, source_url='javascript:alert(1)"')
    hit.text = HOSTILE
    page = sources_html(SourcesView([hit], 1, "done", [1], {1: [(0, 8)]}))
    assert "<script" not in page and "<img" not in page and "javascript:" not in page
    assert "&lt;script&gt;" in page


def test_the_library_lists_committed_articles_newest_first() -> None:
    articles: dict[str, dict[str, Any]] = {
        "a": {"title": "Old", "lang": "en", "date": "2024-01-01", "n_passages": 3, "version": "v"},
        "b": {"title": "New", "lang": "th", "date": "2025-01-01", "n_passages": 4, "version": "v"},
        "c": {"title": "Writing", "lang": "de", "version": "", "pending": "x"},
    }
    assert library_rows(articles) == [
        ["New", "Thai", "2025-01-01", 4, "b"],
        ["Old", "English", "2024-01-01", 3, "a"],
    ]
    assert language_choices(articles) == [("English", "en"), ("Thai", "th")]  # not "Writing"


def test_an_article_opens_with_its_passages_in_order_and_its_text_inert() -> None:
    record = {"title": HOSTILE, "lang": "fr", "date": "", "source_url": "javascript:alert(1)"}
    passages = [
        Hit(f"a:1:{n:04d}", text, PassageMeta(doc_id="a", lang="fr"), 0.0)
        for n, text in enumerate(["Premier passage.", HOSTILE])
    ]
    shown = article_html(record, passages)
    assert "<script>" not in shown and "<img" not in shown and "javascript:" not in shown
    assert shown.count('class="nqa-passage"') == 2 and "Passage 2" in shown
    assert "French · date unknown · 2 passages" in shown


# -- uploads -------------------------------------------------------------------------------------
@pytest.mark.reliability
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\evil.md", "evil.md"),
        (".hidden.html", "hidden.html"),
        ("my article (v2).pdf", "my article _v2_.pdf"),
        ("Hải Phòng.txt", "Hải Phòng.txt"),
    ],
)
def test_upload_names_lose_their_folders_and_odd_characters(given: str, expected: str) -> None:
    assert safe_name(given) == expected


@pytest.mark.reliability
@pytest.mark.parametrize("given", ["", "..", "../", "  ", "///", "._-"])
def test_upload_names_with_nothing_left_are_refused(given: str) -> None:
    with pytest.raises(BotError):
        safe_name(given)


def _files(folder: Path, **contents: bytes) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for name, data in contents.items():
        path = folder / name.replace("_dot_", ".")
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.mark.reliability
def test_upload_plan_refuses_wrong_type_empty_huge_and_clashing_files(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_upload_mb=0.001)
    up = _files(
        tmp_path / "up",
        a_dot_txt=b"ok",
        b_dot_exe=b"MZ",
        c_dot_md=b"",
        d_dot_html=b"x" * 2000,
        e_dot_pdf=b"%PDF",
        e_dot_txt=b"again",
        taken_dot_md=b"new",
        same_dot_txt=b"v2",
    )
    existing = _files(tmp_path / "data", taken_dot_txt=b"old", same_dot_txt=b"v1")
    plan = plan_uploads(up, [p.name for p in up], existing, settings)
    assert [name for _, name in plan.accepted] == ["a.txt", "e.pdf", "same.txt"]
    reasons = dict(plan.rejected)
    assert "unsupported type .exe" in reasons["b.exe"]
    assert reasons["c.md"] == "empty file"
    assert "MAX_UPLOAD_MB" in reasons["d.html"]
    assert "another file in this upload" in reasons["e.txt"]
    assert "already used by taken.txt" in reasons["taken.md"]


@pytest.mark.reliability
def test_upload_plan_refuses_too_many_files_at_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_upload_files=2)
    up = _files(tmp_path / "up", a_dot_txt=b"1", b_dot_txt=b"2", c_dot_txt=b"3")
    plan = plan_uploads(up, [p.name for p in up], [], settings)
    assert not plan.accepted and len(plan.rejected) == 3
    assert "MAX_UPLOAD_FILES" in plan.rejected[0][1]


# -- Backend: start-up, uploads ------------------------------------------------------------------
def test_the_backend_indexes_the_library_then_reports_ready(backend: Backend) -> None:
    assert backend.ready.is_set() and backend.settled.is_set() and not backend.error
    status = backend.status_markdown()
    assert status.startswith("**5 articles** · ready"), status
    head, _, details = status.partition("<details")
    assert "LLM" not in head and "the fake LLM" in details  # technical details folded away
    assert len(library_rows(backend.articles())) == 5


def test_start_up_problems_are_reported_not_raised(tmp_path: Path) -> None:
    data = tmp_path / "articles"
    data.mkdir()
    (data / "empty.txt").write_bytes(b"")
    settings = make_settings(tmp_path, data_dir=data, embedder="fake", llm_backend="fake")
    backend = Backend(settings, FakeChat(), FakeEmbedder())
    backend.prepare()
    assert backend.ready.is_set()
    assert "empty.txt: empty file" in backend.status_markdown()
    assert "library is empty" in backend.status_markdown()

    dead = make_settings(tmp_path, chroma_host="127.0.0.1", chroma_port=9, embedder="fake")
    broken = Backend(dead, FakeChat(), FakeEmbedder())
    thread = broken.start()  # keeps trying to reach the Chroma server
    deadline = time.monotonic() + 30
    while not broken.error and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not broken.ready.is_set() and not broken.settled.is_set()
    status = broken.status_markdown()
    assert status.startswith("⚠️ **Not ready:** Cannot reach the Chroma server"), status
    assert "Trying again" in status
    with pytest.raises(BotError, match="Chroma server"):
        broken.wait(timeout=30)  # at once: a question is told, not kept waiting
    broken.close()
    thread.join(timeout=30)
    assert broken.settled.is_set()


def test_a_question_asked_before_a_start_up_problem_is_known_hears_of_it(
    tmp_path: Path,
) -> None:
    """Asked in the first seconds, before the first attempt to reach Chroma has failed: the
    question is told once it fails, not kept waiting for the whole timeout (900 s)."""
    backend = Backend(make_settings(tmp_path, embedder="fake"), FakeChat(), FakeEmbedder())
    told: list[BaseException] = []
    asking = threading.Thread(target=lambda: _raised(backend.wait, told), daemon=True)
    asking.start()  # prepare() has not run: nothing is known yet
    backend.error = "Cannot reach the Chroma server at 127.0.0.1:9."
    asking.join(timeout=30)
    assert not asking.is_alive(), "the question still waits"
    assert [str(e) for e in told] == ["Cannot reach the Chroma server at 127.0.0.1:9."]


def _raised(call: Any, into: list[BaseException]) -> None:
    try:
        call()
    except BotError as exc:
        into.append(exc)


def _uploads(tmp_path: Path, **contents: str) -> list[Path]:
    folder = tmp_path / "incoming"
    folder.mkdir(exist_ok=True)
    paths = []
    for name, text in contents.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


ARTICLE = (
    "Hai Phong opens a floating library\n\n"
    "The floating library of Hai Phong opened on the Cam River in March 2025. "
    "It lends books to the fishermen of the bay and their children, and it holds "
    "twelve thousand volumes in Vietnamese, English and French.\n\n"
    "The city plans a second boat for the islands of Cat Ba next year."
)


def test_an_upload_is_saved_indexed_and_searchable_at_once(
    backend: Backend, tmp_path: Path
) -> None:
    steps: list[tuple[int, int, str]] = []
    files = _uploads(tmp_path, **{"floating library.md": ARTICLE, "junk.txt": "\x00\x01" * 50})
    report = backend.add_files(
        files, ["../floating library.md", "junk.txt"], lambda *s: steps.append(s)
    )
    data = backend.settings.data_dir
    assert "✓ **floating library.md**: added" in report and "searchable now" in report
    assert "✗ **junk.txt**" in report
    assert (data / "floating library.md").read_text(encoding="utf-8") == ARTICLE
    assert not (data / "junk.txt").exists()  # a file that failed is taken back out
    assert not list(data.glob(".*"))  # no temporary or backup file left behind
    assert steps[0] == (0, 2, "floating library.md")
    deps = backend.wait()
    hits, _ = deps.retriever.search("floating library fishermen books", 3)
    assert hits[0].doc_id == "floating library"


@pytest.mark.reliability
def test_a_failed_update_brings_the_previous_file_back(backend: Backend, tmp_path: Path) -> None:
    data = backend.settings.data_dir
    original = (data / "002_1ca994a0bc34cf02.txt").read_bytes()
    bad = _uploads(tmp_path, **{"002_1ca994a0bc34cf02.txt": "Same tag\nComment (0)\nNo data\n"})
    report = backend.add_files(bad, [p.name for p in bad], lambda *s: None)
    assert "✗ **002_1ca994a0bc34cf02.txt**" in report
    assert (data / "002_1ca994a0bc34cf02.txt").read_bytes() == original
    assert "002_1ca994a0bc34cf02" in backend.articles()


@pytest.mark.reliability
def test_an_upload_never_lands_outside_the_data_dir(backend: Backend, tmp_path: Path) -> None:
    files = _uploads(tmp_path, **{"escape.txt": ARTICLE})
    backend.add_files(files, ["../../../escape.txt"], lambda *s: None)
    assert (backend.settings.data_dir / "escape.txt").is_file()
    assert not (backend.settings.data_dir.parent / "escape.txt").exists()
    assert not (tmp_path.parent / "escape.txt").exists()


# -- the chat handler ----------------------------------------------------------------------------
def _respond(
    backend: Backend, question: str, turns: list[dict[str, str]] | None = None
) -> list[Any]:
    respond = make_respond(backend)
    return list(respond(question, [], turns or [], {}, 5, [], False))


def test_the_chat_shows_sources_before_the_answer_then_cites_and_highlights(
    backend: Backend,
) -> None:
    frames = _respond(backend, "What did To Lam ask of Hai Phong?")
    chats = [f[0] for f in frames]
    sources = [f[1] for f in frames]
    assert "Searching" in sources[0] and frames[0][3] == ""  # the textbox is cleared at once
    first_passages = next(
        i for i, s in enumerate(sources) if isinstance(s, str) and "<details" in s
    )
    first_token = next(i for i, c in enumerate(chats) if "[1]" in c[-1]["content"])
    assert first_passages < first_token
    final_chat, final_sources, turns, *_ = frames[-1]
    assert final_chat[0] == {"role": "user", "content": "What did To Lam ask of Hai Phong?"}
    assert final_chat[-1]["content"].endswith("[[1]](#nqa-src-1)")  # the marker links its card
    assert unlinked(final_chat[-1]["content"]) == turns[-1]["content"]  # history: plain text
    assert turns[-1]["content"].endswith("[1]")
    assert "<mark>" in final_sources and "1 of 5 passages cited" in final_sources
    assert [t["role"] for t in turns] == ["user", "assistant"]


def test_an_unsupported_reply_is_replaced_by_a_notice_with_the_draft_folded(
    backend: Backend,
) -> None:
    assert backend.deps is not None
    invented = "The city will host the 2040 Olympic Games in Do Son [1]."
    backend.deps.llm = FakeChat([invented])
    frames = _respond(backend, "Which sports event will Hai Phong host?")
    shown = [f[0][-1]["content"] for f in frames if f[0]]
    notice_at = next(i for i, c in enumerate(shown) if "do not seem to say" in c)
    assert not any("Olympic" in c for c in shown[:notice_at]), "the draft never streams"
    assert any("Checking the answer against the articles" in c for c in shown)
    final_chat, final_sources, turns, *_ = frames[-1]
    content = final_chat[-1]["content"]
    notice, _, folded = content.partition("<details")
    assert notice.startswith("The articles do not seem to say this. The closest passages: [[")
    assert "Unverified draft" in folded and "2040 Olympic Games" in folded
    assert unlinked(content) == turns[-1]["content"] and "Olympic" not in turns[-1]["content"]
    assert "<mark>" in final_sources  # the closest evidence, highlighted in its passage


def test_a_follow_up_is_answered_with_the_conversation(backend: Backend) -> None:
    llm = backend.deps.llm if backend.deps else None
    assert isinstance(llm, FakeChat)
    turns = _respond(backend, "What did To Lam ask of Hai Phong?")[-1][2]
    llm.calls.clear()
    _respond(backend, "And what about its port?", turns)
    rewrite = llm.calls[0][-1]["content"]
    assert "To Lam" in rewrite and "And what about its port?" in rewrite


def test_an_empty_question_changes_nothing(backend: Backend) -> None:
    frames = list(make_respond(backend)("   ", [], [], {}, 5, [], False))
    assert len(frames) == 1 and frames[0][0] == [] and frames[0][2] == []


@pytest.mark.reliability
def test_a_dying_llm_leaves_the_partial_answer_and_a_readable_error(backend: Backend) -> None:
    assert backend.deps is not None
    backend.deps.llm = Dying()
    final_chat, _, turns, *_ = _respond(backend, "What did To Lam ask of Hai Phong?")[-1]
    shown = unlinked(final_chat[-1]["content"])
    assert shown.startswith("The city wants to grow [1].")
    assert "⚠️ The LLM at http://127.0.0.1:9/v1 (LLM_BASE_URL) stopped answering." in shown
    assert "Traceback" not in shown and turns == []  # a failed answer is not history


def test_stopping_closes_the_llm_stream_and_marks_the_answer(backend: Backend) -> None:
    assert backend.deps is not None
    endless = backend.deps.llm = Endless()
    frames = make_respond(backend)("What did To Lam ask of Hai Phong?", [], [], {}, 5, [], False)
    for chat, *_ in frames:
        if "more" in chat[-1]["content"]:
            break
    frames.close()  # what Gradio does when Stop cancels the event
    assert endless.closed.wait(30)  # the answer's thread closes it at its next token
    stopped = mark_stopped(chat, [])
    assert stopped[-1]["content"].endswith("_(stopped)_")
    finished = [{"role": "assistant", "content": "Done [1]."}]
    assert mark_stopped(finished, finished) == finished
    shown = [{"role": "assistant", "content": "Done [[1]](#nqa-src-1)."}]  # as the chat shows it
    assert mark_stopped(shown, finished) == shown


class _Pondering(FakeChat):
    """Reads its prompt until told to go on, as the embedded LLM does for 30-45 s."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__(replies)
        self.go = threading.Event()

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        if purpose(messages) != "rewrite":  # the answer, not the follow-up's rewrite
            self.go.wait(60)
        yield from super().stream(messages, max_tokens)


def test_the_wait_shows_its_phase_with_the_seconds_and_the_rewritten_question(
    backend: Backend,
) -> None:
    assert backend.deps is not None
    slow = backend.deps.llm = _Pondering(["What did To Lam ask of Hai Phong's port?"])
    turns = [
        {"role": "user", "content": QUESTION_EN},
        {"role": "assistant", "content": "He asked it to grow [1]."},
    ]
    frames = make_respond(backend)("And its port?", [], turns, {}, 5, [], False)
    for chat, *_ in frames:
        if re.fullmatch(r"_Reading \d+ passages… [1-9]\d* s_", chat[-1]["content"]):
            slow.go.set()  # a second has passed and the page said so
            break
    else:
        pytest.fail("no elapsed time was shown while the model read")
    assert chat[-2]["content"] == (
        "And its port?\n\n_Searched as: What did To Lam ask of Hai Phong's port?_"
    )
    *_, (final, _, turns, *_) = frames
    assert unlinked(final[-1]["content"]).endswith("[1]")
    assert turns[-2] == {"role": "user", "content": "And its port?"}  # history: as asked


def test_the_highlights_are_the_evidence_of_the_supported_sentences() -> None:
    hit = _hit(1)
    proof, doubt = Evidence(1, 0, 17, 4.0), Evidence(1, 18, 34, 0.5)
    claims = [
        Claim(0, 18, "Passage 1 text.", [1], [proof], supported=True),
        Claim(19, 40, "Something else.", [1], [doubt]),  # evidence, but not enough: no mark
    ]
    text = "Passage 1 text [1]. Something else [1]."
    result = Answer("q", "q", "en", text=text, passages=[hit], context_n=1, claims=claims)
    assert highlights(result) == {1: [(0, 17)]}


@pytest.mark.reliability
def test_the_api_keeps_the_partial_answer_of_a_dying_llm(backend: Backend) -> None:
    assert backend.deps is not None
    backend.deps.llm = Dying()
    result = make_ask(backend)("What did To Lam ask of Hai Phong?")
    assert result["answer"].startswith("The city wants to grow [1].")
    assert "stopped answering" in result["error"] and result["passages"]


def test_the_api_raises_when_the_llm_failed_before_saying_anything(backend: Backend) -> None:
    assert backend.deps is not None
    backend.deps.llm = Silent()
    with pytest.raises(Exception, match="Cannot reach the LLM"):
        make_ask(backend)("What did To Lam ask of Hai Phong?")


def test_sentence_vectors_shared_by_workers_survive_an_eviction_between_two_reads() -> None:
    """One worker embeds while another fills the cache past its limit: the first still gets
    every vector it asked for (with one shared dict it read back an evicted one)."""
    inside, go_on = threading.Event(), threading.Event()
    model = FakeEmbedder()

    def embed(sentences: list[str]) -> np.ndarray:
        if "slow" in sentences:
            inside.set()
            assert go_on.wait(10)
        return model.embed_passages(sentences)

    cache = VectorCache(embed, limit=2)
    cache(["known"])
    cache(["other"])
    got: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: got.append(cache(["known", "slow"])))
    worker.start()
    assert inside.wait(10)
    cache(["a"])
    cache(["b"])  # the cache is past its limit by now: "known" is evicted
    go_on.set()
    worker.join(10)
    assert len(got) == 1 and got[0].shape == (2, model.dim)
    assert np.allclose(got[0][0], model.embed_passages(["known"])[0])
