"""The embedded LLM server's life for one client: started on first use; after its process
died, started again for the next request, unless it died again before answering anything
since that restart. A llama.cpp build that crashes on every prompt is then not restarted in a
loop, and every request, like the status line, hears in words what happened and where the
server's log is.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import BotError
from bot.models.local_llm import ENDED_LINE, LocalServer, start_local_server

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)
EXIT_WAIT_S = 3.0  # how long a process whose connection broke is given to finish dying


@dataclass(frozen=True)
class Ended:
    """How a server's process ended, and what it was doing then."""

    pid: int
    how: str  # "signal 11: SIGSEGV, segmentation fault"; "" when not known
    log: Path
    doing: str  # "reading the question"; "" when it died between requests

    def words(self, doing: str = "", again: bool = False) -> str:
        """In words: "stopped unexpectedly (signal 11: …) while reading the question"."""
        when = " again right after a restart" if again else ""
        how = f" ({self.how})" if self.how else ""
        doing = doing or self.doing
        return f"stopped unexpectedly{when}{how}" + (f" while {doing}" if doing else "")

    def restarting(self, doing: str = "") -> str:
        """For the reader, when the server is started again for the next request."""
        return (
            f"The local model {self.words(doing)}; details in {self.log}. It is started "
            "again for the next question."
        )


class EmbeddedServer:
    """The embedded LLM server of one client, started on first use. A server that died is
    started again for the next request; one that died again before answering anything since
    its restart is not: it stays down, and every request hears why."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: LocalServer | None = None
        self.ended: Ended | None = None  # the last death, None while none is known
        self.given_up = ""  # why it is not started again
        self._deaths = 0  # deaths in a row with nothing answered between them
        self.suspect = False  # the last call could not reach it: check it before the next
        self._lock = threading.Lock()

    def base_url(self) -> str:
        """The address of a running server: started (again) if needed. When the last call
        could not reach it (`suspect`), one that runs but does not answer is replaced."""
        with self._lock:
            suspect, self.suspect = self.suspect, False
            server = self.server
            if server is not None and not server.alive():
                self._died(server, "")
            elif server is not None and suspect and not server.answers():
                log.warning(
                    "the embedded LLM server (pid %s) is deaf; starting it again", server.pid
                )
                server.stop()
                self.server = None
            if self.given_up:
                raise BotError(self.given_up)
            if self.server is None:
                self.server = self._start()
            return self.server.base_url

    def _start(self) -> LocalServer:
        s = self.settings
        try:
            return start_local_server(
                s.model_dir,
                s.llm_model,
                s.llm_threads,
                prefix_budget_mb=s.prefix_budget_mb,
                module=s.llm_server_module,
            )
        except BotError as exc:
            self._death(f"The local model is unavailable: it failed to start twice. {exc}")
            raise

    @property
    def pid(self) -> int | None:
        return self.server.pid if self.server else None

    def answered(self) -> None:
        """The model read a prompt and answered (a completion, or part of an article read):
        a death after this is not 'again'."""
        self._deaths = 0

    def crashed(self, pid: int | None, doing: str) -> BotError | None:
        """After a request to server `pid` broke off while it was `doing` something ("reading
        the question"): the error that says how the server ended, None if it still runs."""
        with self._lock:
            server = self.server
            if server is not None and server.pid == pid and server.gone(EXIT_WAIT_S):
                self._died(server, doing)
            ended = self.ended
            if ended is None or ended.pid != pid:
                return None
            return BotError(self.given_up or ended.restarting(doing))

    def _died(self, server: LocalServer, doing: str) -> None:
        self.server = None
        self.ended = ended = Ended(server.pid, server.how_it_ended(), server.log, doing)
        log.error(
            "the embedded LLM server (pid %s) ended (%s); its log: %s",
            server.pid,
            ended.how or "how is not known",
            server.log,
        )
        if server.owned:
            with contextlib.suppress(OSError), server.log.open("a") as out:
                out.write(f"\n{ENDED_LINE}{ended.how or 'unknown'}\n")
        self._death(
            f"The local model is unavailable: it {ended.words(again=True)}, so it is not "
            f"started again. Details in {server.log}; `python -m bot.models.selftest` "
            "checks the build (`make install` rebuilds it), or set LLM_BASE_URL to use "
            "another OpenAI-compatible server."
        )

    def _death(self, given_up: str) -> None:
        """One more death with nothing answered since the last: the second in a row gives the
        server up, for the reason `given_up`."""
        self._deaths += 1
        if self._deaths >= 2:
            self.given_up = given_up

    def problem(self) -> str:
        """For the status line: why answers cannot be written now ("" when nothing is known
        to stop them)."""
        if self.given_up:
            return self.given_up
        ended = self.ended
        if ended is not None and self.server is None:
            return ended.restarting()
        return ""

    def stop(self) -> None:
        with self._lock:
            if self.server is not None:
                self.server.stop()
                self.server = None
