"""Scores of one answered question, and the summary of a run.

A result (one line of results.jsonl) holds `ranking` (every retrieved passage, best first, with
its translations folded in as `alternatives`), `retrieved` (the ones given to the model for the
answer) and `read` (everything the model read: in article mode every article tried).
Retrieval metrics look at `ranking`; a passage counts as gold when it, or one of its
translations, contains a gold substring (compared after normalisation).
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

from bot.answering.citations import cited_numbers
from bot.answering.refusal import REFUSAL_PHRASES
from bot.text.foreign import foreign_terms
from bot.text.language import detect_language
from eval.questions import Question

_GROUP_SEPARATOR = re.compile(r"(?<=\d)[,.'\u00a0\u202f ](?=\d{3}(?!\d))")
# The baseline does not mark its refusals: besides the bot's own phrases, these say it.
_REFUSALS = (
    *REFUSAL_PHRASES,
    "does not provide",
    "do not provide",
    "doesn't provide",
    "not mentioned",
    "no information",
    "does not contain",
    "doesn't contain",
    "does not mention",
    "doesn't mention",
    "cannot answer",
    "can't answer",
    "unable to answer",
    "not specified",
    "not provided",
)
# latency, the model's own first token (before the check lets one through) and readings tried
TIMINGS = ("retrieve_s", "model_first_token_s", "first_token_s", "total_s", "tries")


def normalize(text: str) -> str:
    """Case-folded, white space collapsed, digit-group separators removed: "1,000" == "1000"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _GROUP_SEPARATOR.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def fact_holds(answer: str, alternatives: list[str]) -> bool:
    norm = normalize(answer)
    return any(normalize(a) in norm for a in alternatives)


def looks_like_refusal(text: str) -> bool:
    """Our pipeline marks refusals itself; this catches the baseline's free-form ones."""
    norm = normalize(text)
    return not norm or any(normalize(phrase) in norm for phrase in _REFUSALS)


def _texts(passage: dict[str, Any]) -> list[str]:
    return [passage.get("text", "")] + [a.get("text", "") for a in passage.get("alternatives", [])]


def _docs(passage: dict[str, Any]) -> set[str]:
    return {passage.get("doc_id", "")} | {
        a.get("doc_id", "") for a in passage.get("alternatives", [])
    }


def is_gold(passage: dict[str, Any], gold: list[str]) -> bool:
    wanted = [normalize(g) for g in gold]
    return any(g in normalize(text) for text in _texts(passage) for g in wanted)


def _first_rank(ranking: list[dict[str, Any]], test: Any) -> int | None:
    return next((p["rank"] for p in ranking if test(p)), None)


def score(q: Question, result: dict[str, Any], k: int) -> dict[str, Any]:
    """Per-question scores; None where a score does not apply."""
    ranking = result.get("ranking", [])
    out: dict[str, Any] = {}
    if q.answerable and q.gold:
        rank = _first_rank(ranking, lambda p: is_gold(p, q.gold))
        out.update(_hits("gold", rank, k))
    if q.answerable and q.expected_docs:
        rank = _first_rank(ranking, lambda p: bool(_docs(p) & set(q.expected_docs)))
        out.update(_hits("doc", rank, k))
        articles = result.get("articles")
        if articles:
            out["article_hit@1"] = articles[0] in q.expected_docs
            out["article_hit@3"] = bool(set(articles[:3]) & set(q.expected_docs))
    read = result.get("read") or result.get("retrieved")  # every article tried, when recorded
    if q.answerable and q.gold and read:
        out["evidence_hit"] = any(is_gold(p, q.gold) for p in read)
    if result.get("retrieval_only") or result.get("error"):
        return out
    answer, refused = result.get("answer", ""), bool(result.get("refused"))
    withheld = result.get("verdict") == "unsupported"  # the reader is told it is not found
    declined = refused or withheld
    if q.answerable:
        out["answered"] = not declined
        if q.facts:
            held = sum(fact_holds(answer, group) for group in q.facts)
            out["fact_recall"] = 0.0 if declined else held / len(q.facts)
    else:
        out["refused_correctly"] = declined
    if "verdict" in result:
        out["withheld"] = withheld
        if withheld and q.answerable and q.facts:
            draft = result.get("draft", "")
            out["withheld_right"] = all(fact_holds(draft, group) for group in q.facts)

    raw_numbers = cited_numbers(result.get("raw_answer", answer))
    if raw_numbers:
        given = len(result.get("retrieved", []))
        out["citation_valid"] = all(1 <= n <= given for n in raw_numbers)
    citations = result.get("citations", [])
    if not declined:
        out["cited"] = bool(citations)
    if q.answerable and citations and not withheld:
        supported = [is_gold(c, q.gold) or bool(_docs(c) & set(q.expected_docs)) for c in citations]
        out["citation_support"] = sum(supported) / len(supported)
    if answer.strip():
        out["lang_match"] = detect_language(answer) == q.lang
    if answer.strip() and not declined:
        out["foreign_words"] = has_foreign_words(
            answer, q, citations or result.get("retrieved", [])
        )
    sentences = result.get("sentences") or []
    if sentences and not declined:
        out["supported_sentences"] = sum(s["supported"] for s in sentences) / len(sentences)
        # an answer shown although the citation check supports none of its sentences, and
        # whether it was right all the same (what withholding such answers would cost)
        out["unsupported_answer"] = not any(s["supported"] for s in sentences)
        if out["unsupported_answer"]:
            out["unsupported_right"] = q.answerable and out.get("fact_recall") == 1.0
    return out


def has_foreign_words(answer: str, q: Question, passages: list[dict[str, Any]]) -> bool:
    """Whether the answer carries words of the language of the passages it cites (or, citing
    none, of those it was given), names and the question's own words apart (bot.text.foreign)."""
    sources = {detect_language(p.get("text", "")) for p in passages}
    return bool(foreign_terms(answer, q.lang, sources, re.findall(r"\w+", q.question)))


def _hits(prefix: str, rank: int | None, k: int) -> dict[str, Any]:
    return {
        f"{prefix}_rank": rank,
        f"{prefix}_hit@1": rank is not None and rank <= 1,
        f"{prefix}_hit@3": rank is not None and rank <= 3,
        f"{prefix}_hit@k": rank is not None and rank <= k,
        f"{prefix}_mrr": 1 / rank if rank else 0.0,
    }


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(v for v in values if v is not None and not math.isnan(v))
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


RATE_METRICS = [
    "gold_hit@1",
    "gold_hit@3",
    "gold_hit@k",
    "gold_mrr",
    "doc_hit@1",
    "doc_hit@3",
    "doc_hit@k",
    "doc_mrr",
    "article_hit@1",
    "article_hit@3",
    "evidence_hit",
    "fact_recall",
    "answered",
    "refused_correctly",
    "citation_valid",
    "citation_support",
    "cited",
    "lang_match",
    "foreign_words",
    "supported_sentences",
    "unsupported_answer",
    "unsupported_right",
    "withheld",
    "withheld_right",
    "faithfulness",
]
LABELS = {
    "gold_hit@1": "gold passage hit@1",
    "gold_hit@3": "gold passage hit@3",
    "gold_hit@k": "gold passage hit@k",
    "gold_mrr": "gold passage MRR@k",
    "doc_hit@1": "expected article hit@1",
    "doc_hit@3": "expected article hit@3",
    "doc_hit@k": "expected article hit@k",
    "doc_mrr": "expected article MRR@k",
    "article_hit@1": "article ranking hit@1",
    "article_hit@3": "article ranking hit@3",
    "evidence_hit": "evidence hit (a gold passage in what the model read, any article tried)",
    "supported_sentences": "answer sentences the citation check finds supported",
    "unsupported_answer": "answers of which the citation check supports no sentence",
    "unsupported_right": "of those, answers that hold every fact all the same",
    "withheld": "replies withheld as unsupported (the articles do not seem to say it)",
    "withheld_right": "of those, replies that held every fact (right answers withheld)",
    "fact_recall": "fact recall (answerable)",
    "answered": "answerable questions answered",
    "refused_correctly": "unanswerable questions refused",
    "citation_valid": "citation validity (every [n] was given)",
    "citation_support": "citation support (cited passage is gold or expected)",
    "cited": "answers with a citation",
    "lang_match": "answer in the question's language",
    "foreign_words": "answers with words of another language (the articles'; names apart)",
    "faithfulness": "faithfulness (LLM judge, sentences supported)",
}


def summarize(
    questions: list[Question], results: list[dict[str, Any]], meta: dict[str, Any]
) -> dict[str, Any]:
    by_id = {r["id"]: r for r in results}
    rows = [by_id[q.id] for q in questions if q.id in by_id]
    metrics: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    for name in RATE_METRICS:
        values = [r["scores"][name] for r in rows if r.get("scores", {}).get(name) is not None]
        metrics[name] = sum(float(v) for v in values) / len(values) if values else None
        counts[name] = len(values)
    latency = {}
    for name in TIMINGS:
        values = [r["timings"][name] for r in rows if r.get("timings", {}).get(name) is not None]
        latency[name] = {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}
    errors = [r for r in rows if r.get("error")]
    kinds: dict[str, int] = {}
    for r in errors:
        kind = str(r["error"]).split(":")[0][:60]
        kinds[kind] = kinds.get(kind, 0) + 1
    return {
        **meta,
        "questions": len(questions),
        "done": len(rows),
        "metrics": metrics,
        "counts": counts,
        "latency": latency,
        "errors": len(errors),
        "error_kinds": kinds,
    }


def flat(summary: dict[str, Any]) -> dict[str, float]:
    """Every figure of a summary under one name, for --fail-under and compare."""
    out = {k: v for k, v in summary.get("metrics", {}).items() if v is not None}
    for name, stats in summary.get("latency", {}).items():
        for p, v in stats.items():
            if v is not None:
                out[f"{name}_{p}"] = v
    out["errors"] = summary.get("errors", 0)
    return out
