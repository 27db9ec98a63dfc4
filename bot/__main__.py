"""Ask a question from the command line.

    python -m bot "What did To Lam ask of Hai Phong?"
    python -m bot --lang fr --since 2024-01-01 "..."   # filters
    python -m bot --json "..."                          # machine output

The answer streams as it is written; the cited passages follow (title, language, source URL,
text). With no LLM_BASE_URL the embedded LLM is started on 127.0.0.1 and stopped at exit.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from bot.answering.pipeline import stream_answer
from bot.answering.question import Question
from bot.answering.records import Done, Sources, Token
from bot.errors import BotError
from bot.retrieval.records import Filters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__.splitlines()[0])
    parser.add_argument("question")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--lang", action="append", default=[], help="only passages in LANG")
    parser.add_argument("--doc", action="append", default=[], help="only article DOC_ID")
    parser.add_argument("--since", default="", help="only articles dated on or after YYYY-MM-DD")
    parser.add_argument("--until", default="", help="only articles dated on or before YYYY-MM-DD")
    parser.add_argument("--top-k", type=int, default=None, help="passages to retrieve")
    args = parser.parse_args(argv)
    from bot.deps import build_deps, stop_on_sigterm

    stop_on_sigterm()  # `kill` stops it as Ctrl-C does, and the LLM server with it
    asked = Question(
        args.question,
        filters=Filters(args.lang, args.doc, args.since, args.until),
        top_k=args.top_k,
    )
    deps = None
    try:
        deps = build_deps()
        for event in stream_answer(deps, asked):
            if args.json:
                if isinstance(event, Done):
                    print(json.dumps(event.answer.to_dict(), ensure_ascii=False, indent=2))
            elif isinstance(event, Sources) and not event.passages:
                print("(no passage matches)", file=sys.stderr)
            elif isinstance(event, Token):
                print(event.text, end="", flush=True)
            elif isinstance(event, Done):
                _print_sources(event)
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\n(stopped)", file=sys.stderr)
        return 130
    finally:
        if deps is not None:
            deps.close()  # stops the embedded LLM server this process started
    return 0


def _print_sources(done: Done) -> None:
    result = done.answer
    print()
    if result.verdict == "unsupported":
        print("\nUnverified draft (the citation check found none of it in the articles):")
        print(textwrap.indent(textwrap.fill(result.draft, 100), "    "))
    if result.error:
        print(f"\nerror: {result.error}", file=sys.stderr)
    shown = result.citations
    if shown:
        print("\nSources:")
        for c in shown:
            print(f"[{c.n}] {c.title} ({c.lang}) {c.source_url}".rstrip())
            print(textwrap.indent(textwrap.fill(c.text, 100), "    "))
            for alt in c.alternatives:
                print(f"    also in {alt.meta.lang}: {alt.meta.title} ({alt.doc_id})")
    elif result.passages and not result.refused:
        print("\nMost relevant passages:")
        for n, hit in enumerate(result.passages[: result.context_n], 1):
            print(f"[{n}] {hit.meta.title} ({hit.meta.lang})")
            print(textwrap.indent(textwrap.fill(hit.text, 100), "    "))


if __name__ == "__main__":
    sys.exit(main())
