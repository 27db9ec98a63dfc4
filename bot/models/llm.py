"""Chat models behind one small interface; the real one always speaks the OpenAI protocol.

`make_llm(settings)`: LLM_BASE_URL set -> that server (OpenAI, vLLM, Ollama, llama.cpp ...);
unset -> the embedded Qwen2.5-Coder-1.5B, started on first use (bot.models.local_llm);
LLM_BACKEND=fake -> a scripted model for tests and UI development (bot.models.fake_llm).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bot.errors import BotError
from bot.text.redact import redact

if TYPE_CHECKING:
    from bot.models.embedded import EmbeddedServer
    from bot.settings import Settings

Message = dict[str, str]
log = logging.getLogger(__name__)


class ChatModel(Protocol):
    where: str  # for error messages: the URL and the setting that chose it
    # "server": the embedded server computes and keeps prompt prefixes on request (prefix());
    # "remote": a server that reuses prefixes by itself (vLLM); "none": nothing is reused.
    prefixes: Literal["server", "remote", "none"]

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]: ...

    def complete(self, messages: list[Message], max_tokens: int) -> str: ...

    def start(self) -> None:
        """Get ready to answer (start the embedded server); blocks until ready."""
        ...

    def problem(self) -> str:
        """What keeps the model from answering now, for the status line ("" when nothing is
        known to): the embedded server's crash."""
        ...

    def close(self) -> None: ...


@dataclass
class PrefixState:
    """How much of a prompt prefix the embedded server holds computed (bot.models.llm_server)."""

    tokens: int
    ready: int
    seconds: float = 0.0

    @property
    def done(self) -> bool:
        return self.tokens > 0 and self.ready >= self.tokens


class OpenAIChat:
    """Any OpenAI-compatible chat completions endpoint."""

    def __init__(
        self,
        base_url: str | None,
        model: str,
        api_key: str | None,
        timeout: float,
        where: str,
        local: Settings | None = None,
    ) -> None:
        self.base_url, self.model, self.api_key, self.timeout = base_url, model, api_key, timeout
        self.where = where
        self._embedded: EmbeddedServer | None = None  # with `local`: started on first use
        if local is not None:
            from bot.models.embedded import EmbeddedServer

            self._embedded = EmbeddedServer(local)
        self._lock = threading.Lock()
        self._suspect = False  # the last call could not reach the server
        self._openai: Any = None
        self._openai_url: str | None = None
        self.prefixes: Literal["server", "remote", "none"] = "server" if local else "remote"

    def prefix(self, messages: list[Message], label: str, read: int = 0) -> PrefixState:
        """The embedded server's state for the prompt prefix `messages` (ending with
        bot.models.prefix_store.SENTINEL); with `read` > 0 it first reads up to that many more
        tokens of it, giving way to any question that arrives meanwhile."""
        body = self._newsqa(
            "prefix", {"messages": messages, "label": label, "read": read}, None if read else 30.0
        )
        return PrefixState(int(body["tokens"]), int(body["ready"]), float(body["seconds"]))

    def progress(self) -> tuple[int, int] | None:
        """(tokens read, tokens) of the prompt the embedded server is reading for a completion;
        None for another server, or when it reads none."""
        import httpx

        if self._embedded is None or self._embedded.server is None:
            return None
        try:
            body = httpx.get(self._newsqa_url("progress"), timeout=2.0).raise_for_status().json()
        except (httpx.HTTPError, ValueError):
            return None
        prompt = int(body.get("prompt", 0))
        return (int(body.get("read", 0)), prompt) if prompt > 0 else None

    def retain(self, labels: list[str]) -> None:
        """Let the embedded server drop stored prefixes whose label is not in `labels`."""
        self._newsqa("retain", {"labels": labels}, 30.0)

    def _newsqa(self, path: str, body: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        import httpx

        if self._embedded is None:
            raise BotError("Only the embedded LLM server keeps prompt prefixes.")
        self._client()  # started, and its address known
        pid = self._embedded.pid
        try:
            response = httpx.post(self._newsqa_url(path), json=body, timeout=timeout)
            response.raise_for_status()
            found = dict(response.json())
        except httpx.HTTPError as exc:
            self._suspect = True
            broke = isinstance(exc, httpx.TransportError)  # not an HTTP error status
            crash = self._embedded.crashed(pid, "reading an article") if broke else None
            if crash is not None:
                raise crash from exc
            raise BotError(f"The LLM at {self.where} failed to read an article ({exc!r}).") from exc
        if body.get("read"):
            self._embedded.answered()  # it read a prompt: a crash after this is not 'again'
        return found

    def _newsqa_url(self, path: str) -> str:
        """An endpoint the embedded server adds beside /v1 (bot.models.llm_server)."""
        return str(self.base_url).removesuffix("/v1") + "/newsqa/" + path

    def _client(self) -> Any:
        from openai import OpenAI

        if self._embedded is not None:
            with self._lock:
                suspect, self._suspect = self._suspect, False
            self.base_url = self._embedded.base_url(suspect)  # started (again) if it is down
            self.where = f"the embedded LLM server at {self.base_url} (LLM_BACKEND=local)"
        with self._lock:  # one client (and connection pool) per server address
            if self._openai is None or self._openai_url != self.base_url:
                key = self.api_key or "not-needed"
                self._openai = OpenAI(
                    base_url=self.base_url, api_key=key, timeout=self.timeout, max_retries=0
                )
                self._openai_url = self.base_url
            return self._openai

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        pid, written = None, False
        try:
            client = self._client()
            pid = self.server_pid
            response = client.chat.completions.create(
                model=self.model,
                messages=messages,
                max_tokens=max_tokens,
                temperature=0,
                stream=True,
            )
            finished = False
            with response:  # closed when the caller stops early: the server stops generating
                for chunk in response:
                    if chunk.choices and chunk.choices[0].delta.content:
                        written = True
                        yield chunk.choices[0].delta.content
                    finished = finished or bool(chunk.choices and chunk.choices[0].finish_reason)
            if not finished:  # the connection closed before the model said it was done
                self._suspect = True
                raise BotError(f"The LLM at {self.where} stopped answering mid-reply.")
        except Exception as exc:
            doing = "writing the answer" if written else "reading the question"
            raise self._readable(exc, pid, doing) from exc
        self._answered()

    def complete(self, messages: list[Message], max_tokens: int) -> str:
        pid = None
        try:
            client = self._client()
            pid = self.server_pid
            response = client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens, temperature=0
            )
            text = str(response.choices[0].message.content or "")
        except Exception as exc:
            raise self._readable(exc, pid, "answering") from exc
        self._answered()
        return text

    def start(self) -> None:
        if self._embedded is not None:
            self._client()

    def problem(self) -> str:
        return self._embedded.problem() if self._embedded is not None else ""

    @property
    def server_pid(self) -> int | None:
        """Process id of the embedded server this client uses, if any."""
        return self._embedded.pid if self._embedded is not None else None

    def _answered(self) -> None:
        if self._embedded is not None:
            self._embedded.answered()

    def close(self) -> None:
        """Stop the embedded server if this process started it."""
        if self._embedded is not None:
            self._embedded.stop()

    def _readable(self, exc: Exception, pid: int | None, doing: str) -> Exception:
        """The openai client's errors as one BotError naming the URL and the setting; the API
        key never appears in it, even when a server echoes it back. When the embedded server's
        process has ended, the error says so instead: how, while `doing` what, and its log."""
        error = self._describe(exc)
        if self._embedded is not None and self._suspect:
            error = self._embedded.crashed(pid, doing) or error
        if isinstance(error, BotError):
            return BotError(redact(str(error), self.api_key))
        return error

    def _describe(self, exc: Exception) -> Exception:
        import httpx
        import openai

        where = self.where
        if isinstance(exc, BotError):
            return exc
        if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
            return BotError(
                f"The LLM at {where} did not answer within {self.timeout:.0f} s (LLM_TIMEOUT)."
            )
        if isinstance(exc, httpx.TransportError | openai.APIConnectionError):
            self._suspect = True  # the next call checks that the embedded server is alive
        if isinstance(exc, httpx.TransportError):  # the connection broke while streaming
            return BotError(f"The LLM at {where} stopped answering mid-reply ({exc!r}).")
        if isinstance(exc, openai.APIConnectionError):
            return BotError(f"Cannot reach the LLM at {where}. Is it running? Check LLM_BASE_URL.")
        if isinstance(exc, openai.AuthenticationError):
            return BotError(f"The LLM at {where} refused the API key. Check LLM_API_KEY.")
        if isinstance(exc, openai.NotFoundError):
            return BotError(f"The LLM at {where} has no model {self.model!r}. Check LLM_MODEL.")
        if isinstance(exc, openai.APIStatusError):
            return BotError(f"The LLM at {where} failed (HTTP {exc.status_code}).")
        if isinstance(exc, openai.OpenAIError):
            return BotError(f"The LLM at {where} sent a reply the bot cannot read ({exc}).")
        return exc


def make_llm(settings: Settings) -> ChatModel:
    backend = settings.llm_backend
    if backend == "fake":
        from bot.models.fake_llm import FakeChat

        return FakeChat()
    if backend == "auto":
        backend = "openai" if settings.llm_base_url else "local"
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    if backend == "openai":
        if not settings.llm_base_url:
            raise BotError(
                "LLM_BACKEND=openai needs LLM_BASE_URL (e.g. https://api.openai.com/v1)."
            )
        where = f"{settings.llm_base_url} (LLM_BASE_URL)"
        return OpenAIChat(
            settings.llm_base_url, settings.llm_model, key, settings.llm_timeout, where
        )
    where = "the embedded LLM server (LLM_BACKEND=local)"
    return OpenAIChat(None, settings.llm_model, key, settings.llm_timeout, where, local=settings)
