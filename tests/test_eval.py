"""`python -m eval`: question files, metrics, resumable runs, reports, compare, thresholds,
the llama-index baseline and the judge. Fast: hashing embedder and scripted LLM on the corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.models.fake_llm import FakeChat
from bot.settings import Settings
from eval.__main__ import main
from eval.jsonl import read_jsonl
from eval.judge import Judge
from eval.metrics import fact_holds, flat, normalize, score, summarize
from eval.pipelines import Baseline, Ours
from eval.questions import Question, QuestionFileError, load_questions
from eval.run import RunConfig, RunError, run
from tests.conftest import ROOT, make_settings
from tests.fake_openai import FakeOpenAI

DEV = ROOT / "eval" / "questions" / "dev.jsonl"


def _q(**kw: Any) -> Question:
    base: dict[str, Any] = {
        "id": "q1",
        "question": "Who chairs it?",
        "lang": "en",
        "answerable": True,
        "expected_docs": ["docA"],
        "gold": ["Nguyen Van Tung"],
        "facts": [["Nguyen Van Tung"], ["2025"]],
    }
    return Question(**{**base, **kw})


# -- question files ------------------------------------------------------------------------------
def test_the_shipped_dev_set_is_valid_and_the_same_as_the_shared_one() -> None:
    questions = load_questions(DEV)
    assert len(questions) == 18 and sum(q.answerable for q in questions) == 15
    shared = ROOT.parent / "shared" / "eval" / "dev.jsonl"
    if shared.exists():
        assert shared.read_text(encoding="utf-8") == DEV.read_text(encoding="utf-8")


def test_the_widened_dev_set_holds_the_shared_one_and_more() -> None:
    wide = DEV.with_name("dev-wide.jsonl")
    assert wide.read_text(encoding="utf-8").startswith(DEV.read_text(encoding="utf-8"))
    questions = load_questions(wide)
    assert len(questions) == 36 and {q.lang for q in questions} >= {"en", "fr", "de", "th", "vi"}
    assert sum(bool(q.history) for q in questions) >= 2


def test_the_dev_set_is_split_in_two_halves_as_eval_split_deals_them() -> None:
    tune, check = (load_questions(DEV.with_name(f"{n}.jsonl")) for n in ("tune", "check"))
    wide = {q.id for q in load_questions(DEV.with_name("dev-wide.jsonl"))}
    assert len(tune) + len(check) >= 150 and abs(len(tune) - len(check)) <= 1
    assert wide <= {q.id for q in tune} and not {q.id for q in tune} & {q.id for q in check}
    for half in (tune, check):
        assert sum(not q.answerable for q in half) >= 12 and sum(bool(q.history) for q in half) >= 6
        assert {q.lang for q in half} >= {"en", "fr", "de", "th", "vi"}
    assert main(["split", "--check"]) == 0  # the committed halves are what the split makes


def test_a_new_split_keeps_each_kind_in_proportion() -> None:
    from eval.split import split

    written = [
        {"id": f"q{i}", "answerable": i % 4 != 0, **({"history": [1]} if i % 10 == 1 else {})}
        for i in range(60)
    ]
    tuned = [{"id": f"t{i}", "answerable": True} for i in range(20)]
    tune, check = split(written, tuned)
    assert len(check) == 40 and len(tune) == 40 and tune[:20] == tuned
    assert sum(not q["answerable"] for q in check) == 10  # 15 off-corpus, two thirds of them
    assert split(written, tuned) == (tune, check)  # the seed fixes the deal
    assert split(written, tuned, seed=1)[1] != check


def test_every_gold_passage_text_is_in_an_expected_article() -> None:
    articles = {
        p.stem: normalize(p.read_text("utf-8")) for p in (ROOT / "data" / "articles").glob("*.txt")
    }
    for name in ("tune", "check"):
        for q in load_questions(DEV.with_name(f"{name}.jsonl")):
            for gold in q.gold:
                assert any(normalize(gold) in articles[d] for d in q.expected_docs), (q.id, gold)


def test_a_bad_question_file_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    good = json.dumps(
        {
            "id": "a",
            "question": "q?",
            "lang": "en",
            "answerable": False,
            "expected_docs": [],
            "gold": [],
            "facts": [],
        }
    )
    lines = [
        good,
        "{not json",
        json.dumps({"id": "b", "question": "q?", "lang": "en", "answerable": "yes"}),
        good,
        json.dumps(
            {
                "id": "c",
                "question": "q?",
                "lang": "en",
                "answerable": False,
                "expected_docs": [],
                "gold": ["x"],
                "facts": [[]],
                "extra": 1,
            }
        ),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(QuestionFileError) as caught:
        load_questions(path)
    message = str(caught.value)
    assert f"{path}:2: not JSON" in message
    assert f"{path}:3: missing 'expected_docs'" in message
    assert f"{path}:3: 'answerable' must be a bool, not str" in message
    assert f"{path}:4: duplicate id 'a'" in message
    assert f"{path}:5: unknown field(s) extra" in message
    assert main(["validate", str(path)]) == 1
    assert main(["validate", str(DEV)]) == 0


# -- metrics -------------------------------------------------------------------------------------
def test_facts_match_case_space_and_digit_group_insensitively() -> None:
    assert normalize("  1,000 \n People ") == "1000 people"
    assert fact_holds("It has 1 000 000 people.", ["1,000,000"])
    assert fact_holds("about 12.500 members", ["12500"])
    assert fact_holds("NGUYEN  VAN TUNG", ["Nguyen Van Tung"])
    assert not fact_holds("growth of 3.5 percent", ["35"])
    assert not fact_holds("January 10, 2025", ["102025"])


def _passage(rank: int, doc: str, text: str, **kw: Any) -> dict[str, Any]:
    return {"rank": rank, "doc_id": doc, "text": text, "score": 0.1, "alternatives": [], **kw}


def test_scores_of_an_answered_question() -> None:
    ranking = [
        _passage(1, "docB", "Nothing here."),
        _passage(
            2,
            "docC",
            "Die Rede.",
            alternatives=[{"doc_id": "docA", "text": "said Nguyen Van Tung today"}],
        ),
        _passage(3, "docA", "Nguyen Van Tung chairs it."),
    ]
    result = {
        "answer": "Nguyen Van Tung chairs it [2].",
        "raw_answer": "Nguyen Van Tung [2] [4].",
        "refused": False,
        "ranking": ranking,
        "retrieved": ranking[:3],
        "citations": [{"n": 2, **ranking[1]}],
    }
    s = score(_q(), result, k=3)
    assert s["gold_rank"] == 2 and s["doc_rank"] == 2  # a translation counts as the passage
    assert (s["gold_hit@1"], s["gold_hit@3"], s["gold_hit@k"], s["gold_mrr"]) == (
        False,
        True,
        True,
        0.5,
    )
    assert s["fact_recall"] == 0.5 and s["answered"] is True
    assert s["citation_valid"] is False  # the model wrote [4] with 3 passages given
    assert s["citation_support"] == 1.0 and s["cited"] is True and s["lang_match"] is True


def test_scores_of_refusals() -> None:
    refusal = {
        "answer": "I don't know: the indexed articles do not say.",
        "refused": True,
        "ranking": [],
        "retrieved": [],
        "citations": [],
    }
    s = score(_q(), refusal, k=5)
    assert s["answered"] is False and s["fact_recall"] == 0.0 and s["gold_hit@k"] is False
    off = score(_q(answerable=False, expected_docs=[], gold=[], facts=[]), refusal, k=5)
    assert off == {"refused_correctly": True, "lang_match": True}


def test_answers_the_citation_check_supports_nowhere_are_counted_with_the_right_ones() -> None:
    def result(answer: str, *supported: bool) -> dict[str, Any]:
        sentences = [{"supported": s, "moved": False} for s in supported]
        return {"answer": answer, "refused": False, "sentences": sentences, "citations": []}

    right = score(_q(), result("Nguyen Van Tung, since 2025 [1].", False), k=5)
    assert right["unsupported_answer"] is True and right["unsupported_right"] is True
    wrong = score(_q(), result("Tran Luu Quang [1].", False, False), k=5)
    assert wrong["unsupported_answer"] is True and wrong["unsupported_right"] is False
    invented = score(_q(answerable=False, facts=[]), result("In 2031 [1].", False), k=5)
    assert invented["unsupported_right"] is False
    partly = score(_q(), result("Nguyen Van Tung [1]. Maybe [1].", True, False), k=5)
    assert partly["unsupported_answer"] is False and "unsupported_right" not in partly


def test_a_withheld_reply_counts_as_declined_and_its_draft_as_what_withholding_cost() -> None:
    def result(draft: str) -> dict[str, Any]:
        notice = "The articles do not seem to say this. The closest passages: [1]"
        sentences = [{"supported": False, "moved": False}]
        citations = [{"n": 1, "doc_id": "docA", "text": "Nguyen Van Tung chairs it."}]
        return {
            "answer": notice,
            "refused": False,
            "verdict": "unsupported",
            "draft": draft,
            "sentences": sentences,
            "citations": citations,
        }

    right = score(_q(), result("Nguyen Van Tung, since 2025 [1]."), k=5)
    assert right["answered"] is False and right["fact_recall"] == 0.0
    assert right["withheld"] is True and right["withheld_right"] is True
    assert "unsupported_answer" not in right and "citation_support" not in right
    wrong = score(_q(), result("Tran Luu Quang [1]."), k=5)
    assert wrong["withheld_right"] is False
    off = score(_q(answerable=False, expected_docs=[], gold=[], facts=[]), result("In 2031."), k=5)
    assert off["refused_correctly"] is True and "withheld_right" not in off
    shown = {**result(""), "verdict": "supported", "answer": "Nguyen Van Tung, since 2025 [1]."}
    assert score(_q(), shown, k=5)["withheld"] is False


def test_summary_rates_and_latency_percentiles() -> None:
    questions = [
        _q(id="a"),
        _q(id="b"),
        _q(id="c", answerable=False, gold=[], facts=[], expected_docs=[]),
    ]
    results = [
        {"id": "a", "scores": {"answered": True, "fact_recall": 1.0}, "timings": {"total_s": 10.0}},
        {
            "id": "b",
            "scores": {"answered": False, "fact_recall": 0.0},
            "timings": {"total_s": 30.0},
        },
        {
            "id": "c",
            "scores": {"refused_correctly": True},
            "timings": {"total_s": 20.0},
            "error": "BotError: dead",
        },
    ]
    summary = summarize(questions, results, {"pipeline": "ours"})
    assert summary["metrics"]["answered"] == 0.5 and summary["metrics"]["fact_recall"] == 0.5
    assert summary["metrics"]["gold_hit@k"] is None
    assert summary["latency"]["total_s"] == {"p50": 20.0, "p95": 30.0}
    assert summary["errors"] == 1 and summary["error_kinds"] == {"BotError": 1}
    assert flat(summary)["total_s_p50"] == 20.0


# -- runs ----------------------------------------------------------------------------------------
@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, embedder="fake", llm_backend="fake")


class Counting:
    """Ours with a scripted LLM, counting questions and failing the ones asked to."""

    def __init__(self, fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.asked: list[str] = []
        self.fail = fail

    def __call__(self, settings: Settings, retrieval_only: bool) -> Any:
        outer = self
        pipeline = Ours(settings, retrieval_only, llm=FakeChat())

        class Wrapped:
            k = pipeline.k

            def run(self, q: Question) -> dict[str, Any]:
                outer.asked.append(q.id)
                if q.id in outer.fail:
                    raise RuntimeError(f"boom on {q.id}")
                return pipeline.run(q)

            def close(self) -> None:
                pipeline.close()

        return Wrapped()


def test_a_run_writes_results_summary_report_and_plot(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "run"
    questions = load_questions(DEV)
    summary = run(RunConfig(DEV, out, limit=4), questions, settings, Counting(), progress=False)
    results = read_jsonl(out / "results.jsonl")
    assert [r["id"] for r in results] == ["d01", "d02", "d03", "d04"]
    first = results[0]
    for key in (
        "id",
        "question",
        "answer",
        "refused",
        "verdict",
        "draft",
        "tries",
        "retrieved",
        "citations",
        "timings",
        "scores",
    ):
        assert key in first
    assert set(first["retrieved"][0]) >= {"rank", "doc_id", "text", "score"}
    assert set(first["timings"]) - {"one_language_s"} == {  # that one: foreign words fixed
        "retrieve_s",
        "model_first_token_s",
        "first_token_s",
        "total_s",
        "tries",
    }
    if first["citations"]:
        assert set(first["citations"][0]) >= {"n", "doc_id", "text"}
    assert summary["done"] == 4 and summary["k"] == settings.top_k
    saved = json.loads((out / "summary.json").read_text())
    assert saved["metrics"] == summary["metrics"]
    report = (out / "report.md").read_text()
    assert "gold passage hit@3" in report and "| d04 |" in report and "metrics.png" in report
    assert (out / "metrics.png").read_bytes()[:4] == b"\x89PNG"


def test_a_run_resumes_records_failures_and_retries_them(
    settings: Settings, tmp_path: Path
) -> None:
    out, questions = tmp_path / "run", load_questions(DEV)[:5]
    first = Counting(fail={"d02"})
    summary = run(RunConfig(DEV, out, limit=3), questions, settings, first, progress=False)
    assert first.asked == ["d01", "d02", "d03"]
    assert summary["errors"] == 1 and summary["done"] == 3
    failed = read_jsonl(out / "results.jsonl")[1]
    assert failed["id"] == "d02" and failed["error"] == "RuntimeError: boom on d02"
    second = Counting()
    summary = run(RunConfig(DEV, out), questions, settings, second, progress=False)
    assert second.asked == ["d02", "d04", "d05"]  # finished ones skipped, the failed one retried
    assert summary["errors"] == 0 and summary["done"] == 5
    ids = [r["id"] for r in read_jsonl(out / "results.jsonl")]
    assert ids == ["d01", "d02", "d03", "d04", "d05"]
    with pytest.raises(RunError, match="other settings"):
        run(RunConfig(DEV, out, retrieval_only=True), questions, settings, Counting())


def test_cli_thresholds_compare_and_reference(tmp_path: Path, capsys: Any) -> None:
    common = [
        "--questions",
        str(DEV),
        "--retrieval-only",
        "--quiet",
        "--set",
        "embedder=fake",
        "--set",
        f"index_dir={tmp_path / 'index'}",
    ]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main([*common, "--out", str(a), "--fail-under", "doc_hit@k=0.01"]) == 0
    assert (
        main([*common, "--out", str(b), "--set", "top_k=1", "--fail-under", "doc_hit@k=0.99"]) == 1
    )
    assert "FAIL doc_hit@k" in capsys.readouterr().err
    assert main([*common, "--out", str(a), "--fail-under", "nonsense=1"]) == 2
    assert "unknown metric(s) nonsense" in capsys.readouterr().err
    assert main(["compare", str(a), str(b)]) == 0
    printed = capsys.readouterr().out
    assert "doc_hit@k" in printed and "question(s) changed outcome" in printed
    assert main([*common, "--out", str(tmp_path / "c"), "--reference", str(a)]) == 0
    assert "ours (retrieval only), k=5" in (tmp_path / "c" / "report.md").read_text()


def test_the_baseline_is_llama_index_defaults_with_our_models(settings: Settings) -> None:
    baseline = Baseline(settings, retrieval_only=False, llm=FakeChat(["It is Nguyen Van Tung."]))
    try:
        assert baseline.k == 2  # llama-index's default top-k
        result = baseline.run(_q(question="Who is the Chairman of the People's Committee?"))
        assert result["answer"] == "It is Nguyen Van Tung." and not result["refused"]
        assert len(result["ranking"]) == 2 and result["ranking"][0]["doc_id"]
        assert result["citations"] == [] and result["timings"]["first_token_s"] > 0
        prompt = baseline.llm.calls[-1]  # type: ignore[attr-defined]
        assert prompt[0]["role"] == "system" and "expert Q&A system" in prompt[0]["content"]
    finally:
        baseline.close()


def test_the_judge_scores_each_cited_sentence() -> None:
    result = {
        "answer": "The port is big [1]. The city is old [2].",
        "citations": [{"n": 1, "text": "A big port."}, {"n": 2, "text": "A new city."}],
    }
    with FakeOpenAI() as server:
        server.replies.extend(["Yes.", "no"])
        judge = Judge(server.base_url, "judge-model", None, 10)
        assert judge.faithfulness(result) == 0.5
        asked = server.requests[0]["body"]["messages"][0]["content"]
        assert "[1] A big port." in asked and "Statement: The port is big." in asked
    assert Judge("http://127.0.0.1:9/v1", "m", None, 1).faithfulness({"answer": "x"}) is None
