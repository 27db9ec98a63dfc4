"""The chat's thumbs and comment box: a rating is stored at once (bot.ratings), the
comment box then opens for an optional comment, stored with the same answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from bot.ratings import FeedbackLog

Records = dict[int, dict[str, Any]]  # chat index of an answer -> its record


def make_rate(log_: FeedbackLog) -> Callable[..., tuple[Any, ...]]:
    def rate(records: Records, data: gr.LikeData) -> tuple[Any, ...]:
        """A thumb clicked (or unclicked): stored at once; the comment box opens for it."""
        record = (records or {}).get(index_of(data.index))
        if record is None:
            gr.Warning("Only an answer that finished can be rated.")
            return gr.skip(), gr.skip(), None
        entry = log_.rate(record, data.liked)
        if entry["rating"] is None:
            return closed_comment()
        thumb = "👍" if entry["rating"] == "up" else "👎"
        box = gr.Textbox(
            visible=True,
            value="",
            label=f"{thumb} What was right or wrong? (optional; saved with the answer)",
        )
        return box, gr.Button(visible=True), (index_of(data.index), data.liked)

    return rate


def make_comment(log_: FeedbackLog) -> Callable[..., tuple[Any, ...]]:
    def comment(text: str, rated: tuple[int, bool] | None, records: Records) -> tuple[Any, ...]:
        record = (records or {}).get(rated[0]) if rated else None
        if record is None or not (text or "").strip():
            return gr.skip(), gr.skip()
        log_.rate(record, rated[1], text)  # type: ignore[index]
        gr.Info("Thank you: your comment is saved with the answer.")
        return gr.Textbox(visible=False, value=""), gr.Button(visible=False)

    return comment


def closed_comment() -> tuple[Any, Any, None]:
    """The comment box hidden and about no answer (after New chat or Retry)."""
    return gr.Textbox(visible=False, value=""), gr.Button(visible=False), None


def index_of(index: int | tuple[int, int]) -> int:
    return index if isinstance(index, int) else index[0]
