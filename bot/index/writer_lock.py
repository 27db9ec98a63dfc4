"""One writer of the search state at a time, across processes (bot.index.state_writer)."""

from __future__ import annotations

import os
import socket
import time
import uuid

from bot.errors import BotError
from bot.index.state_store import LOCK_ID, collection
from bot.index.store import _UNIT, Index
from bot.net import pid_alive


class WriterLock:
    """One writer of the search state at a time, across processes: a lease record in Chroma
    (owner and expiry), renewed as the writer goes. A writer killed holding it blocks others
    for at most LEASE_S (a dead process on this machine, not at all). The writer renews it at
    every batch of articles, so LEASE_S bounds the time one batch's reading and embedding may
    take.
    Chroma has no compare-and-set: the lease is written, then read back."""

    LEASE_S = 300.0

    def __init__(self, index: Index, wait_s: float = 600.0) -> None:
        self.index, self.wait_s = index, wait_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _holder(self) -> tuple[str, float] | None:
        """Who holds the lease, until when (0: its process on this machine is gone)."""
        got = collection(self.index).get(ids=[LOCK_ID], include=["metadatas"])
        metas = got["metadatas"] or []
        if not metas or not metas[0]:
            return None
        owner, until = str(metas[0]["owner"]), float(metas[0]["until"])
        host, pid, _ = [*owner.split(":"), "", ""][:3]
        if host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid)):
            return owner, 0.0
        return owner, until

    def renew(self) -> None:
        meta = {"kind": "lock", "owner": self.owner, "until": time.time() + self.LEASE_S}
        collection(self.index).upsert(ids=[LOCK_ID], embeddings=_UNIT, metadatas=[meta])

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:
            holder = self._holder()
            if holder is None or holder[0] == self.owner or holder[1] < time.time():
                self.renew()
                held = self._holder()
                if held is not None and held[0] == self.owner:
                    return
            if time.monotonic() > deadline:
                raise BotError(
                    "Another process has been updating the search index for "
                    f"{self.wait_s:.0f} s (writer {holder[0] if holder else '?'}). Wait for "
                    "its ingestion to end and run again."
                )
            time.sleep(0.2)  # polling another process's lease: nothing to wait on instead

    def release(self) -> None:
        holder = self._holder()
        if holder is not None and holder[0] == self.owner:
            collection(self.index).delete(ids=[LOCK_ID])
