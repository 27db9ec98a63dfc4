"""Where and how the web UI is served: off localhost only with a login; how many answers run
at once, and the queue they share (the page, /ask and the OpenAI-compatible API)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass
from typing import Any

import uvicorn

from bot.errors import BotError
from bot.models.llm import llm_kind
from bot.settings import Settings


@dataclass
class LaunchOptions:
    host: str
    port: int
    auth: list[tuple[str, str]] | None
    max_file_size: str


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def launch_options(settings: Settings) -> LaunchOptions:
    """Where and how to serve; off localhost only with a username and password."""
    user = settings.ui_username or ""
    password = settings.ui_password.get_secret_value() if settings.ui_password else ""
    if bool(user) != bool(password):
        raise BotError("Set both UI_USERNAME and UI_PASSWORD, or neither.")
    if not is_loopback(settings.ui_host) and not user:
        raise BotError(
            f"UI_HOST={settings.ui_host} would let other machines use the chat: set UI_USERNAME "
            "and UI_PASSWORD as well, or keep UI_HOST=127.0.0.1."
        )
    return LaunchOptions(
        host=settings.ui_host,
        port=settings.ui_port,
        auth=[(user, password)] if user else None,
        max_file_size=f"{int(settings.max_upload_mb * 1024 * 1024)}b",
    )


def listen(options: LaunchOptions) -> socket.socket:
    """The listening socket; OSError when the address is taken or not this machine's."""
    return socket.create_server((options.host, options.port))


def serve(app: Any, sock: socket.socket) -> None:
    """Serve `app` on `sock` until Ctrl-C or SIGTERM (bot.deps.stop_on_sigterm). uvicorn runs in
    a thread, as in Gradio's own launch, so that the main thread takes the signal; open
    streams get 5 s to end."""
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="serve", daemon=True
    )
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def answer_concurrency(settings: Settings) -> int:
    if settings.ui_concurrency:
        return settings.ui_concurrency
    return 1 if llm_kind(settings) == "local" else 4  # the embedded server has one slot


class QueueFull(BotError):
    """More questions wait for an answer slot than UI_QUEUE_SIZE allows."""


class AnswerQueue:
    """The one limit on answers written at once, shared by the page and the APIs: at most
    `limit` run (answer_concurrency), and at most `max_waiting` API questions wait for a slot.
    The page's own questions wait in Gradio's queue first, which has that bound already."""

    def __init__(self, limit: int, max_waiting: int) -> None:
        self.limit, self.max_waiting = limit, max_waiting
        self._slots = threading.Semaphore(limit)
        self._lock = threading.Lock()
        self.waiting = 0

    def ticket(self, bounded: bool = True) -> Ticket:
        """A place in the queue; `bounded`: refused (QueueFull) when the queue is full."""
        with self._lock:
            if bounded and self.waiting >= self.max_waiting:
                raise QueueFull(
                    f"The chat is busy: {self.waiting} questions are waiting for an answer "
                    "slot (UI_QUEUE_SIZE). Try again in a minute."
                )
            self.waiting += 1
        return Ticket(self)


class Ticket:
    """A question's place in the AnswerQueue: `wait` until it holds a slot, `close` (or leave
    the `with` block) to give it back, whether it got one or not."""

    def __init__(self, queue: AnswerQueue) -> None:
        self._queue, self.holds, self.closed = queue, False, False

    def wait(self, timeout: float | None = None) -> bool:
        if not self.holds and not self.closed and self._queue._slots.acquire(timeout=timeout):
            with self._queue._lock:
                self._queue.waiting -= 1
            self.holds = True
        return self.holds

    def close(self) -> None:
        with self._queue._lock:
            if self.closed:
                return
            self.closed = True
            if not self.holds:
                self._queue.waiting -= 1
        if self.holds:
            self._queue._slots.release()

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
