"""Scripted evaluation.

    python -m eval --questions eval/questions/dev.jsonl --out runs/dev [--retrieval-only]
                   [--limit N] [--pipeline ours|baseline] [--set NAME=VALUE ...]
                   [--fail-under METRIC=VALUE ...] [--reference DIR|summary.json]
                   [--judge-url URL --judge-model NAME]
    python -m eval compare DIR_A DIR_B
    python -m eval validate FILE
    python -m eval split [--check]    (the dev set's tune and check halves, eval/split.py)
    python -m eval feedback --out FILE [--from RATINGS] [--yes]   (rated answers -> questions)

Settings are the bot's own (environment, .env); `--set top_k=8 --set llm_base_url=...`
overrides them for one run. The same --out resumes an unfinished run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from eval.questions import QuestionFileError, load_questions

BASELINES = Path(__file__).resolve().parent / "baselines"


def default_reference(questions: Path, pipeline: str, retrieval_only: bool) -> Path | None:
    """The committed summary of the other pipeline on the same question file, if any."""
    other = "baseline" if pipeline == "ours" else "ours"
    suffix = "-retrieval" if retrieval_only else ""
    path = BASELINES / f"{questions.stem}-{other}{suffix}.json"
    return path if path.is_file() else None


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"error: {what} takes NAME=VALUE, got {item!r}")
        pairs[name.strip()] = value.strip()
    return pairs


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m eval", description=__doc__, formatter_class=raw
    )
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--retrieval-only", action="store_true")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--pipeline", choices=["ours", "baseline"], default="ours")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--fail-under", nargs="+", default=[], metavar="METRIC=VALUE")
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--judge-url")
    parser.add_argument("--judge-model", default="gpt-4o-mini")
    parser.add_argument(
        "--judge-key-env",
        default="JUDGE_API_KEY",
        help="environment variable holding the judge's API key",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        from eval.compare import compare

        return compare(argv[1:])
    if argv[:1] == ["split"]:
        from eval.split import main as split

        return split(argv[1:])
    if argv[:1] == ["validate"]:
        return _validate(argv[1:])
    if argv[:1] == ["feedback"]:
        from eval.feedback import run as feedback

        return feedback(argv[1:])
    from bot.deps import stop_on_sigterm

    stop_on_sigterm()  # the run's `finally` stops the embedded LLM server it started
    try:
        return _evaluate(_parser().parse_args(argv))
    except KeyboardInterrupt:
        print(
            "\n(stopped: the finished questions are kept; the same --out resumes)", file=sys.stderr
        )
        return 130


def _evaluate(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from bot.errors import BotError
    from bot.settings import Settings
    from eval.judge import Judge
    from eval.pipelines import PIPELINES
    from eval.run import RunConfig, RunError, run

    thresholds = {k: float(v) for k, v in _pairs(args.fail_under, "--fail-under").items()}
    try:
        questions = load_questions(args.questions)
        settings = Settings(**_pairs(args.set, "--set"))  # type: ignore[arg-type]
    except QuestionFileError as exc:
        print(f"error: invalid question file:\n{exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"error: bad --set value:\n{exc}", file=sys.stderr)
        return 2
    judge = None
    if args.judge_url:
        judge = Judge(
            args.judge_url,
            args.judge_model,
            os.environ.get(args.judge_key_env),
            settings.llm_timeout,
        )
    reference = args.reference or default_reference(
        args.questions, args.pipeline, args.retrieval_only
    )
    config = RunConfig(
        args.questions, args.out, args.pipeline, args.retrieval_only, args.limit, reference
    )
    try:
        summary = run(
            config, questions, settings, PIPELINES[args.pipeline], judge, progress=not args.quiet
        )
    except (RunError, BotError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(_digest(summary))
    print(f"report: {args.out / 'report.md'}")
    return _check(summary, thresholds)


def _check(summary: dict[str, Any], thresholds: dict[str, float]) -> int:
    """Exit code for --fail-under: 1 when a figure is below its threshold, 2 for a bad name."""
    from eval.metrics import flat

    figures = flat(summary)
    unknown = sorted(set(thresholds) - set(figures))
    if unknown:
        print(
            f"error: unknown metric(s) {', '.join(unknown)}; known: {', '.join(figures)}",
            file=sys.stderr,
        )
        return 2
    short = {m: (figures[m], v) for m, v in thresholds.items() if figures[m] < v}
    for metric, (got, wanted) in short.items():
        print(f"FAIL {metric} = {got:.3f} < {wanted:.3f}", file=sys.stderr)
    return 1 if short else 0


def _digest(summary: dict[str, Any]) -> str:
    shown = {k: round(v, 3) for k, v in summary["metrics"].items() if v is not None}
    return (
        f"{summary['pipeline']}: {summary['done']}/{summary['questions']} questions, "
        f"{summary['errors']} errors, k={summary['k']}\n{json.dumps(shown)}"
    )


def _validate(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m eval validate FILE", file=sys.stderr)
        return 2
    try:
        questions = load_questions(Path(argv[0]))
    except QuestionFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    answerable = sum(q.answerable for q in questions)
    print(f"{argv[0]}: {len(questions)} questions ({answerable} answerable), valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
