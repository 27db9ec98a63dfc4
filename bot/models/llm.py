"""Chat models behind one small interface; the real one always speaks the OpenAI protocol.

`make_models(settings)`, as `llm_kind(settings)` says: LLM_BASE_URL set -> that server
(OpenAI, vLLM, Ollama, llama.cpp ...); unset -> the embedded Qwen2.5-Coder-1.5B, started on
first use (bot.models.embedded), with the client of its own endpoints
(bot.models.prefix_server); LLM_BACKEND=fake -> a scripted model for tests and UI development
(bot.models.fake_llm).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bot.errors import BotError
from bot.text.redact import redact

if TYPE_CHECKING:
    from bot.models.embedded import EmbeddedServer
    from bot.models.prefix_server import PrefixServer
    from bot.settings import Settings

Message = dict[str, str]
log = logging.getLogger(__name__)


class ChatModel(Protocol):
    """What every chat model can do, whatever speaks for it: the embedded server's own
    endpoints beside /v1 are bot.models.prefix_server.PrefixServer's."""

    where: str  # for error messages: the URL and the setting that chose it

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]: ...

    def complete(self, messages: list[Message], max_tokens: int) -> str: ...

    def yes_probability(self, messages: list[Message]) -> float:
        """How likely the model's reply starts with "yes" rather than "no" (0-1, 0.5 when it
        starts with neither), from the probabilities of its first token."""
        ...

    def start(self) -> None:
        """Get ready to answer (start the embedded server); blocks until ready."""
        ...

    def problem(self) -> str:
        """What keeps the model from answering now, for the status line ("" when nothing is
        known to): the embedded server's crash."""
        ...

    def close(self) -> None: ...


class OpenAIChat:
    """Any OpenAI-compatible chat completions endpoint."""

    def __init__(
        self,
        base_url: str | None,
        model: str,
        api_key: str | None,
        timeout: float,
        where: str,
        embedded: EmbeddedServer | None = None,
    ) -> None:
        self.base_url, self.model, self.api_key, self.timeout = base_url, model, api_key, timeout
        self.where = where
        self._embedded = embedded  # the embedded server, started on first use, or None
        self._lock = threading.Lock()
        self._openai: Any = None
        self._openai_url: str | None = None

    def _client(self) -> Any:
        from openai import OpenAI

        if self._embedded is not None:
            self.base_url = self._embedded.base_url()  # started (again) if it is down
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
                self._distrust()
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

    def yes_probability(self, messages: list[Message]) -> float:
        pid = None
        try:
            client = self._client()
            pid = self.server_pid
            response = client.chat.completions.create(
                model=self.model,
                messages=messages,
                max_tokens=1,
                temperature=0,
                logprobs=True,
                top_logprobs=10,
            )
            choice = response.choices[0]
            tops = choice.logprobs.content[0].top_logprobs if choice.logprobs else []
            odds = {"yes": 0.0, "no": 0.0}
            for top in tops:
                word = top.token.strip().lower()
                if word in odds:
                    odds[word] += math.exp(top.logprob)
        except Exception as exc:
            raise self._readable(exc, pid, "answering") from exc
        self._answered()
        if not tops:  # an endpoint without log probabilities: its word for it
            said = str(choice.message.content or "").strip().lower()
            return 1.0 if said.startswith("yes") else 0.0 if said.startswith("no") else 0.5
        total = odds["yes"] + odds["no"]
        return odds["yes"] / total if total else 0.5

    def start(self) -> None:
        if self._embedded is not None:
            self._client()

    def problem(self) -> str:
        return self._embedded.problem() if self._embedded is not None else ""

    @property
    def server_pid(self) -> int | None:
        """Process id of the embedded server this client uses, if any."""
        return self._embedded.pid if self._embedded is not None else None

    def _distrust(self) -> None:
        """The server could not be reached: the next call checks that it is alive."""
        if self._embedded is not None:
            self._embedded.suspect = True

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
        if self._embedded is not None and self._embedded.suspect:
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
            self._distrust()
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


LlmKind = Literal["local", "openai", "fake"]


def llm_kind(settings: Settings) -> LlmKind:
    """Which LLM the settings name: the embedded server (`local`), a server at LLM_BASE_URL
    (`openai`), or the scripted one (`fake`)."""
    if settings.llm_backend == "auto":
        return "openai" if settings.llm_base_url else "local"
    return settings.llm_backend


def make_llm(settings: Settings) -> ChatModel:
    return make_models(settings)[0]


def make_models(settings: Settings) -> tuple[ChatModel, PrefixServer | None]:
    """The chat model the settings name and, for the embedded server, the client of its own
    endpoints (bot.models.prefix_server)."""
    kind = llm_kind(settings)
    if kind == "fake":
        from bot.models.fake_llm import FakeChat

        return FakeChat(), None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    if kind == "openai":
        if not settings.llm_base_url:
            raise BotError(
                "LLM_BACKEND=openai needs LLM_BASE_URL (e.g. https://api.openai.com/v1)."
            )
        where = f"{settings.llm_base_url} (LLM_BASE_URL)"
        chat = OpenAIChat(
            settings.llm_base_url, settings.llm_model, key, settings.llm_timeout, where
        )
        return chat, None
    from bot.models.embedded import EmbeddedServer
    from bot.models.prefix_server import PrefixServer

    server = EmbeddedServer(settings)
    where = "the embedded LLM server (LLM_BACKEND=local)"
    chat = OpenAIChat(None, settings.llm_model, key, settings.llm_timeout, where, server)
    return chat, PrefixServer(server)
