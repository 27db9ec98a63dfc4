"""The embedded LLM server's own endpoints beside /v1 (bot.models.llm_server): read an
article's prompt prefix in advance, say how far it has read a prompt, forget the prefixes of
articles no longer indexed. Only the embedded server has them, so only it has a PrefixServer
(`Deps.prefix_server`); any other model is reached through bot.models.llm.ChatModel alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.errors import BotError

if TYPE_CHECKING:
    from bot.models.embedded import EmbeddedServer
    from bot.models.llm import Message


@dataclass
class PrefixState:
    """How much of a prompt prefix the embedded server holds computed."""

    tokens: int
    ready: int
    seconds: float = 0.0

    @property
    def done(self) -> bool:
        return self.tokens > 0 and self.ready >= self.tokens


class PrefixServer:
    """The /newsqa endpoints of one embedded server (the one its chat model talks to)."""

    def __init__(self, server: EmbeddedServer) -> None:
        self.server = server

    @property
    def pid(self) -> int | None:
        """The server's process id, while it runs."""
        return self.server.pid

    def prefix(self, messages: list[Message], label: str, read: int = 0) -> PrefixState:
        """The server's state for the prompt prefix `messages` (ending with
        bot.models.prefix_store.SENTINEL); with `read` > 0 it first reads up to that many more
        tokens of it, giving way to any question that arrives meanwhile."""
        body = self._post(
            "prefix", {"messages": messages, "label": label, "read": read}, None if read else 30.0
        )
        return PrefixState(int(body["tokens"]), int(body["ready"]), float(body["seconds"]))

    def progress(self) -> tuple[int, int] | None:
        """(tokens read, tokens) of the prompt the server is reading for a completion; None
        when it reads none, or is not running."""
        import httpx

        if self.server.server is None:
            return None
        try:
            body = httpx.get(self._url("progress"), timeout=2.0).raise_for_status().json()
        except (httpx.HTTPError, ValueError):
            return None
        prompt = int(body.get("prompt", 0))
        return (int(body.get("read", 0)), prompt) if prompt > 0 else None

    def retain(self, labels: list[str]) -> None:
        """Let the server drop stored prefixes whose label is not in `labels`."""
        self._post("retain", {"labels": labels}, 30.0)

    def _post(self, path: str, body: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        import httpx

        base = self.server.base_url()  # started (again) if it is down
        pid = self.server.pid
        try:
            response = httpx.post(self._url(path, base), json=body, timeout=timeout)
            response.raise_for_status()
            found = dict(response.json())
        except httpx.HTTPError as exc:
            self.server.suspect = True
            broke = isinstance(exc, httpx.TransportError)  # not an HTTP error status
            crash = self.server.crashed(pid, "reading an article") if broke else None
            if crash is not None:
                raise crash from exc
            raise BotError(
                f"The embedded LLM server at {base} failed to read an article ({exc!r})."
            ) from exc
        if body.get("read"):
            self.server.answered()  # it read a prompt: a crash after this is not 'again'
        return found

    def _url(self, path: str, base: str | None = None) -> str:
        server = self.server.server
        base = base or (server.base_url if server is not None else "")
        return base.removesuffix("/v1") + "/newsqa/" + path
