"""The chat handlers Gradio calls: `respond` streams an answer and its sources into the page,
`ask` is the /ask API, `mark_stopped` finishes an answer the user stopped."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Generator
from typing import Any

import gradio as gr

from bot.answering.pipeline import stream_answer
from bot.answering.question import Question
from bot.answering.records import Answer, Checking, Done, Retrying, Rewritten, Sources, Token
from bot.errors import BotError, unexpected
from bot.ratings import answer_record
from bot.retrieval.records import Filters
from webui.answer_text import flagged, linked, unlinked, with_draft
from webui.asking import Turn, asking
from webui.backend import Backend
from webui.feedback import Records, index_of
from webui.progress import Phase, Tick, with_ticks
from webui.sources import SourcesView, highlights, sources_html

log = logging.getLogger("newsqa.app")

Chat = list[dict[str, Any]]
Turns = list[dict[str, str]]
_SEARCHED_AS = re.compile(r"\n\n_Searched as: .*_\Z", re.S)


def mark_stopped(chat: Chat, turns: Turns) -> Chat:
    """After Stop: an answer that had not finished says so (finished ones are in `turns`)."""
    chat = list(chat or [])
    if chat and chat[-1].get("role") == "assistant":
        content = _text(chat[-1].get("content"))
        finished = turns and turns[-1].get("content") == unlinked(content)
        if not finished and not content.endswith("(stopped)_"):
            chat[-1] = {"role": "assistant", "content": f"{content}\n\n_(stopped)_"}
    return chat


def _text(content: Any) -> str:
    """Chatbot content as text (Gradio passes a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return ""


def make_respond(backend: Backend) -> Callable[..., Generator[tuple[Any, ...], None, None]]:
    def respond(
        message: str,
        chat: Chat,
        turns: Turns,
        records: Records,
        top_k: float,
        langs: list[str],
        scores: bool,
    ) -> Generator[tuple[Any, ...], None, None]:
        """Yields (chat, sources panel, turns, question box, records)."""
        question = (message or "").strip()
        skip = gr.skip()
        if not question:
            gr.Warning("Type a question first.")
            yield list(chat), skip, turns, skip, skip
            return
        chat = [*(chat or []), {"role": "user", "content": question}]
        chat.append({"role": "assistant", "content": "_Searching the articles…_"})
        yield list(chat), sources_html(SourcesView(phase="retrieving")), turns, "", skip
        asked = Question(question, turns, Filters(lang=list(langs or [])), int(top_k))
        # Gradio's queue has let this answer start; API answers share the slots
        with asking(backend, asked) as turn:
            for waits in turn.waiting():
                chat[-1] = {"role": "assistant", "content": f"_{waits}_"}
                yield list(chat), skip, turns, skip, skip
            for out in _answer(turn, chat, SourcesView(show_scores=bool(scores))):
                if isinstance(out, Answer):
                    record = answer_record(
                        out, turns, backend.settings, int(top_k), asked.filters.lang
                    )
                    yield list(chat), skip, skip, skip, {**(records or {}), len(chat) - 1: record}
                else:
                    yield (*out, skip)

    return respond


def _answer(
    turn: Turn, chat: Chat, view: SourcesView
) -> Generator[tuple[Any, ...] | Answer, None, None]:
    """The answer streamed into the chat and the sources panel, then the Answer itself."""
    backend, asked, text = turn.backend, turn.question, ""
    question, turns = asked.text, asked.history
    try:
        deps = turn.deps()
        result: Answer | None = None
        phase = Phase(
            "Making your follow-up a question of its own…" if turns else "Searching the articles…"
        )
        events = with_ticks(lambda: stream_answer(deps, asked))
        for event in events:
            if isinstance(event, Tick) and text:
                continue  # the answer is being written: it shows itself
            if isinstance(event, Tick | Rewritten | Retrying | Sources | Checking):
                phase = _phase(event, phase, chat, question, backend.model_state)
                if isinstance(event, Tick) and deps.prefix_server is not None:
                    phase.read = deps.prefix_server.progress()  # the embedded LLM's reading
                chat[-1] = {"role": "assistant", "content": phase.shown()}
                panel = gr.skip()
                if isinstance(event, Sources):
                    view.passages, view.context_n = event.passages, event.context_n
                    panel = sources_html(view)
                yield list(chat), panel, turns, gr.skip()
            elif isinstance(event, Token):
                text += event.text
                chat[-1] = {"role": "assistant", "content": linked(text)}
                yield list(chat), gr.skip(), turns, gr.skip()
            elif isinstance(event, Done):
                result = event.answer
        if result is None:
            raise RuntimeError("the answer stream ended without its answer")
        shown = result.shown()
        if result.verdict == "unsupported":  # the reply is withheld, folded under the notice
            checked = with_draft(shown, flagged(result.draft, result.claims))
        else:
            checked = shown if result.error else flagged(shown, result.claims)
        chat[-1] = {"role": "assistant", "content": linked(checked)}
        view.passages, view.context_n = result.passages, result.context_n  # the reading kept
        view.phase = "refused" if result.refused else "done"
        view.lang = result.lang
        view.cited = [c.n for c in result.citations]
        yield list(chat), sources_html(view), turns, gr.skip()
        if not result.error:
            turns = [
                *turns,
                {"role": "user", "content": question},
                {"role": "assistant", "content": shown},
            ]
        yield result
        if view.cited:
            view.highlights = highlights(result)
        yield list(chat), sources_html(view), turns, gr.skip()
    except BotError as exc:
        chat[-1] = {"role": "assistant", "content": f"{text}\n\n⚠️ {exc}".strip()}
        yield list(chat), gr.skip(), turns, gr.skip()
    except Exception as exc:
        log.exception("answering failed")
        chat[-1] = {"role": "assistant", "content": f"{text}\n\n⚠️ {unexpected(exc)}".strip()}
        yield list(chat), gr.skip(), turns, gr.skip()


def _phase(event: Any, phase: Phase, chat: Chat, question: str, model_state: str) -> Phase:
    """The phase an event starts (a Tick keeps the current one); a rewritten follow-up is
    shown under the user's message."""
    if isinstance(event, Rewritten):
        if event.question.strip() != question:
            chat[-2] = {"role": "user", "content": f"{question}\n\n_Searched as: {event.question}_"}
        return Phase("Searching the articles…")
    if isinstance(event, Retrying):
        how = ", in translation" if event.kind == "translation" else ""
        return Phase(f"Reading it again{how}…", again=True)
    if isinstance(event, Sources):
        wait = "" if model_state == "ready" else " The model is still starting."
        reading = phase.label.removesuffix("…") + ":" if phase.again else "Reading"
        label = f"{reading} {event.context_n} passages…{wait}"
        return Phase(label if event.passages else "", again=phase.again)
    if isinstance(event, Checking):
        return Phase("Checking the answer against the articles…", again=phase.again)
    return phase


def regenerate(
    chat: list[dict[str, Any]], turns: list[dict[str, str]], records: Records, data: gr.RetryData
) -> tuple[Any, ...]:
    """Retry on the last answer: the question goes back in the box without that answer (nor
    its turn in the conversation); the chat then answers it again."""
    i = index_of(data.index)  # the user message
    record = (records or {}).get(i + 1)
    asked = record["question"] if record else _SEARCHED_AS.sub("", _text(chat[i]["content"]))
    turns = list(turns or [])
    answered = _text(chat[i + 1]["content"]) if i + 1 < len(chat) else None
    if len(turns) >= 2 and turns[-1]["content"] == unlinked(answered or ""):
        turns = turns[:-2]  # the answer had finished: its turn goes too
    kept = {k: v for k, v in (records or {}).items() if k < i}
    return chat[:i], turns, kept, asked


def make_ask(backend: Backend) -> Callable[..., dict[str, Any]]:
    def ask(
        question: str,
        top_k: int = 5,
        languages: str = "",
        history: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Answer a question from the indexed articles.

        Parameters:
            question: the question, in any language
            top_k: passages to retrieve (the model reads the best few)
            languages: comma-separated article language codes to search, e.g. "fr,de"; empty: all
            history: earlier turns, [{"role": "user"|"assistant", "content": "..."}]
        Returns:
            the answer, whether the bot declined, its citations and every retrieved passage;
            when the LLM fails mid-reply, the words it wrote and the `error`
        """
        langs = [code.strip() for code in str(languages or "").split(",") if code.strip()]
        k = int(top_k) if isinstance(top_k, int | float) else None  # None: TOP_K
        asked = Question(question, history or [], Filters(lang=langs), k)
        try:
            with asking(backend, asked) as turn:  # Gradio's queue bounds it
                result = turn.answer()
        except BotError as exc:
            log.info("/ask refused: %s", exc)
            raise gr.Error(str(exc), print_exception=False) from None
        if result.error:
            log.warning("/ask failed: %s", result.error)
            if result.text == result.error:  # nothing came before the error: no answer at all
                raise gr.Error(result.error, print_exception=False)
        return result.to_dict()  # a reply cut short keeps its words, with `error` set

    return ask
