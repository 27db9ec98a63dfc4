"""What the chat shows while an answer is on its way: the answer's events, read in a thread of
their own so that the page hears from it every second (`Tick`) even while the model reads
its prompt, and the phase it is in with the seconds it has taken."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

TICK_S = 1.0


class Tick:
    """Nothing new for TICK_S: time to show the elapsed seconds again."""


@dataclass
class _Failed:
    exc: BaseException


_END = object()


def with_ticks(
    events: Callable[[], Iterator[Any]], tick_s: float = TICK_S
) -> Generator[Any, None, None]:
    """The items of `events()` as they come, a Tick whenever none came for `tick_s`; its
    exceptions are raised here. Closing this generator (Stop) closes `events()` at its next
    item, which closes the LLM's stream."""
    items: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        source = events()
        try:
            for item in source:
                items.put(item)
                if stop.is_set():
                    break
        except BaseException as exc:
            items.put(_Failed(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
            items.put(_END)

    threading.Thread(target=run, name="answer", daemon=True).start()
    try:
        while True:
            try:
                item = items.get(timeout=tick_s)
            except queue.Empty:
                yield Tick()
                continue
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()


@dataclass
class Phase:
    """What the answer is waiting for, since when."""

    label: str
    started: float = field(default_factory=time.monotonic)
    read: tuple[int, int] | None = None  # prompt tokens the model has read, of how many
    again: bool = False  # a reading after one the citation check did not support

    def shown(self) -> str:
        if not self.label:
            return ""
        seconds = int(time.monotonic() - self.started)
        done = ""
        if self.read and self.read[1]:
            done = f" {min(100, 100 * self.read[0] // self.read[1])}% read ·"
        return f"_{self.label}{done} {seconds} s_" if seconds else f"_{self.label}_"
