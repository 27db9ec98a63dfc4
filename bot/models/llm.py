"""Chat models behind one small interface; the real one always speaks the OpenAI protocol.

`make_llm(settings)`: LLM_BASE_URL set -> that server (OpenAI, vLLM, Ollama, llama.cpp ...);
unset -> the embedded Qwen2.5-Coder-1.5B, started on first use (bot.models.local_llm);
LLM_BACKEND=fake -> a scripted model for tests and UI development.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bot.errors import BotError
from bot.text.redact import redact

if TYPE_CHECKING:
    from bot.models.local_llm import LocalServer
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
        self._local = local  # start the embedded server on first use
        self._server: LocalServer | None = None
        self._lock = threading.Lock()
        self._suspect = False  # the last call could not reach the server
        self._openai: Any = None
        self._openai_url: str | None = None
        self.prefixes: Literal["server", "remote", "none"] = "server" if local else "remote"

    def prefix(self, messages: list[Message], label: str, read: int = 0) -> PrefixState:
        """The embedded server's state for the prompt prefix `messages` (ending with
        bot.models.prefix_store.SENTINEL); with `read` > 0 it first reads up to that many more
        tokens of it, giving way to any question that arrives meanwhile."""
        body = self._newsqa("prefix", {"messages": messages, "label": label, "read": read},
                            None if read else 30.0)  # fmt: skip
        return PrefixState(int(body["tokens"]), int(body["ready"]), float(body["seconds"]))

    def progress(self) -> tuple[int, int] | None:
        """(tokens read, tokens) of the prompt the embedded server is reading for a completion;
        None for another server, or when it reads none."""
        import httpx

        if self._local is None or self._server is None:
            return None
        try:
            url = str(self.base_url).removesuffix("/v1") + "/newsqa/progress"
            body = httpx.get(url, timeout=2.0).raise_for_status().json()
        except (httpx.HTTPError, ValueError):
            return None
        prompt = int(body.get("prompt", 0))
        return (int(body.get("read", 0)), prompt) if prompt > 0 else None

    def retain(self, labels: list[str]) -> None:
        """Let the embedded server drop stored prefixes whose label is not in `labels`."""
        self._newsqa("retain", {"labels": labels}, 30.0)

    def _newsqa(self, path: str, body: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        import httpx

        if self._local is None:
            raise BotError("Only the embedded LLM server keeps prompt prefixes.")
        self._client()  # started, and its address known
        url = str(self.base_url).removesuffix("/v1") + "/newsqa/" + path
        try:
            response = httpx.post(url, json=body, timeout=timeout)
            response.raise_for_status()
            return dict(response.json())
        except httpx.HTTPError as exc:
            self._suspect = True
            raise BotError(f"The LLM at {self.where} failed to read an article ({exc!r}).") from exc

    def _client(self) -> Any:
        from openai import OpenAI

        if self._local is not None:
            with self._lock:
                suspect, self._suspect = self._suspect, False
                server = self._server
                if server is not None and (
                    not server.alive() or (suspect and not server.answers())
                ):
                    log.warning("the embedded LLM server (pid %s) is gone or deaf; starting "
                                "it again", server.pid)  # fmt: skip
                    server.stop()
                    self._server = None
                if self._server is None:
                    from bot.models.local_llm import start_local_server

                    s = self._local
                    self._server = start_local_server(
                        s.model_dir,
                        s.llm_model,
                        s.llm_threads,
                        prefix_budget_mb=s.prefix_budget_mb,
                    )
                    self.base_url = self._server.base_url
                    self.where = f"the embedded LLM server at {self.base_url} (LLM_BACKEND=local)"
        with self._lock:  # one client (and connection pool) per server address
            if self._openai is None or self._openai_url != self.base_url:
                key = self.api_key or "not-needed"
                self._openai = OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout,
                                      max_retries=0)  # fmt: skip
                self._openai_url = self.base_url
            return self._openai

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        try:
            response = self._client().chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens, temperature=0,
                stream=True,
            )  # fmt: skip
            finished = False
            with response:  # closed when the caller stops early: the server stops generating
                for chunk in response:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
                    finished = finished or bool(chunk.choices and chunk.choices[0].finish_reason)
            if not finished:  # the connection closed before the model said it was done
                raise BotError(f"The LLM at {self.where} stopped answering mid-reply.")
        except Exception as exc:
            raise self._readable(exc) from exc

    def complete(self, messages: list[Message], max_tokens: int) -> str:
        try:
            response = self._client().chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens, temperature=0
            )
            return str(response.choices[0].message.content or "")
        except Exception as exc:
            raise self._readable(exc) from exc

    def start(self) -> None:
        if self._local is not None:
            self._client()

    @property
    def server_pid(self) -> int | None:
        """Process id of the embedded server this client uses, if any."""
        return self._server.pid if self._server else None

    def close(self) -> None:
        """Stop the embedded server if this process started it."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _readable(self, exc: Exception) -> Exception:
        """The openai client's errors as one BotError naming the URL and the setting; the API
        key never appears in it, even when a server echoes it back."""
        error = self._describe(exc)
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


class FakeChat:
    """A scripted model: replies come from a queue, or, when it is empty, an extractive answer
    that quotes the first source sentence and cites it (for UI development and load tests);
    asked to rewrite a follow-up question, it returns that question unchanged; asked to
    translate, the sentence unchanged after the language's name in brackets."""

    where = "the fake LLM (LLM_BACKEND=fake)"
    prefixes: Literal["server", "remote", "none"] = "none"

    def __init__(self, replies: Iterable[str] = ()) -> None:
        self.replies: deque[str] = deque(replies)
        self.calls: list[list[Message]] = []

    def _reply(self, messages: list[Message]) -> str:
        self.calls.append(messages)
        if self.replies:
            return self.replies.popleft()
        last = re.search(r"^Last question: (.+)$", messages[-1]["content"], re.M)
        if last:
            return last.group(1).strip()
        translate = re.match(r"Translate this sentence .*? into (\w+)\..*?\n\n(.+)\Z",
                             messages[-1]["content"], re.S)  # fmt: skip
        if translate:  # not a translation: the sentence as it was, with the language asked for
            return f"({translate.group(1)}) {translate.group(2).strip()}"
        source = re.search(r"^\[1\] .*\n([\s\S]*?)(?:\n\[2\] |\Z)", messages[-1]["content"], re.M)
        sentence = re.search(r"[^\s.!?][^\n]*?[.!?](?=\s|$)", source.group(1) if source else "")
        return f"{sentence.group(0)} [1]" if sentence else "I don't know."

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        reply = self._reply(messages)
        yield from re.findall(r"\S+\s*|\s+", reply)

    def complete(self, messages: list[Message], max_tokens: int) -> str:
        return self._reply(messages)

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass


def make_llm(settings: Settings) -> ChatModel:
    backend = settings.llm_backend
    if backend == "fake":
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
