"""Computed prompt prefixes (an article read by the model) kept on disk within a size budget.

The embedded LLM server (bot.models.llm_server) saves the model's state after reading an
article's prompt prefix; any later prompt that starts with those tokens loads it instead of
reading the article again. An entry is the state's bytes and the tokens it covers, under a
label naming what it holds (article id and content hash) so that a changed or removed article
can be dropped. Least recently used entries go first when the budget is exceeded.

Only the server process writes here; writes are atomic (temporary file, then rename), so a
killed server leaves at worst an orphan file, removed at the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

INDEX = "index.json"
# Marks, at the end of the last message sent to POST /newsqa/prefix, where the prefix ends.
SENTINEL = "\u2063newsqa-prefix-end\u2063"


@dataclass
class Entry:
    name: str  # file stem: <name>.state and <name>.tokens.npy
    label: str
    n_tokens: int
    bytes: int
    used: float  # time.time() of the last save or load


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if len(diff) else n


class PrefixStore:
    def __init__(self, folder: Path, budget_bytes: int) -> None:
        self.folder, self.budget = folder, budget_bytes
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._tokens: dict[str, np.ndarray] = {}
        self._load()

    def _load(self) -> None:
        try:
            raw = json.loads((self.folder / INDEX).read_text())
        except (OSError, ValueError):
            raw = []
        for item in raw:
            entry = Entry(**item)
            try:
                tokens = np.load(self.folder / f"{entry.name}.tokens.npy")
                size = (self.folder / f"{entry.name}.state").stat().st_size
            except (OSError, ValueError):
                continue
            if size == entry.bytes and len(tokens) == entry.n_tokens:
                self._entries[entry.name], self._tokens[entry.name] = entry, tokens
        known = set(self._entries)
        for path in self.folder.iterdir():  # orphans of a killed write
            if path.name != INDEX and path.name.split(".")[0] not in known:
                path.unlink(missing_ok=True)

    def _save_index(self) -> None:
        tmp = self.folder / f"{INDEX}.tmp"
        tmp.write_text(json.dumps([asdict(e) for e in self._entries.values()]))
        os.replace(tmp, self.folder / INDEX)

    @property
    def size(self) -> int:
        return sum(e.bytes for e in self._entries.values())

    def entries(self) -> list[Entry]:
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: e.used)

    def best(self, tokens: Sequence[int]) -> tuple[str | None, int]:
        """The entry sharing the longest prefix with `tokens` and that prefix's length; an
        entry counts only when all of it is a prefix of `tokens`."""
        query = np.asarray(tokens, dtype=np.int32)
        found, longest = None, 0
        with self._lock:
            for name, stored in self._tokens.items():
                n = len(stored)
                if longest < n <= len(query) and _common_prefix(stored, query) == n:
                    found, longest = name, n
        return found, longest

    def tokens(self, name: str) -> np.ndarray:
        return self._tokens[name]

    def read(self, name: str) -> bytes:
        """An entry's state bytes; reading one counts as using it."""
        data = (self.folder / f"{name}.state").read_bytes()
        with self._lock:
            if name in self._entries:
                self._entries[name].used = time.time()
                self._save_index()
        return data

    def put(self, label: str, tokens: Sequence[int], state: bytes) -> Entry:
        """Store the state covering `tokens`; entries it extends (same label, a prefix of it)
        are dropped, then the least recently used until the budget holds."""
        arr = np.asarray(tokens, dtype=np.int32)
        name = hashlib.sha256(arr.tobytes()).hexdigest()[:24]
        tmp_state = self.folder / f"{name}.state.tmp"
        tmp_state.write_bytes(state)
        with (self.folder / f"{name}.tokens.npy.tmp").open("wb") as out:
            np.save(out, arr)
        with self._lock:
            for old in list(self._entries.values()):
                if old.label == label and old.name != name:
                    self._drop(old.name)
            os.replace(self.folder / f"{name}.tokens.npy.tmp", self.folder / f"{name}.tokens.npy")
            os.replace(tmp_state, self.folder / f"{name}.state")
            entry = Entry(name, label, len(arr), len(state), time.time())
            self._entries[name], self._tokens[name] = entry, arr
            for old in sorted(self._entries.values(), key=lambda e: e.used):
                if self.size <= self.budget or old.name == name:
                    continue
                self._drop(old.name)
            if self.size > self.budget:  # the new entry alone is too big
                self._drop(name)
            self._save_index()
        return entry

    def retain(self, labels: Iterable[str]) -> list[str]:
        """Drop every entry whose label is not in `labels` (articles changed or removed)."""
        keep = set(labels)
        with self._lock:
            gone = [e.name for e in self._entries.values() if e.label not in keep]
            for name in gone:
                self._drop(name)
            self._save_index()
        return gone

    def _drop(self, name: str) -> None:
        self._entries.pop(name, None)
        self._tokens.pop(name, None)
        for suffix in (".state", ".tokens.npy"):
            with contextlib.suppress(OSError):
                (self.folder / f"{name}{suffix}").unlink()
