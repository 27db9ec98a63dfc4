"""Chroma's failures as BotErrors that say what happened and what fixes it.

Every call on the index's client and collections goes through `guarded()`, so a dead Chroma
server, a read-only index directory or a full disk reach the user as one clear sentence
(and the log keeps the original) wherever the call was made: ingestion, retrieval, search state.
"""

from __future__ import annotations

import errno
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.errors import BotError

log = logging.getLogger(__name__)


class IndexUnavailable(BotError):
    """The Chroma server cannot be reached; the same call may work once it is back."""


def describe(exc: BaseException, where: str, index_dir: Path | None) -> BotError:
    """The BotError for a failed Chroma call on the index at `where`."""
    if isinstance(exc, BotError):
        return exc
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    code = getattr(exc, "errno", None)
    if _unreachable(exc):
        return IndexUnavailable(
            f"Cannot reach the Chroma server at {where}: it is down or restarting. The app "
            "carries on when it is back; check CHROMA_HOST and CHROMA_PORT."
        )
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or "readonly" in low or "read-only" in low:
        return BotError(
            f"The index in {where} is read-only ({exc}). Make INDEX_DIR writable or point it "
            "at another folder; the index was not changed."
        )
    if index_dir is not None and (code == errno.ENOSPC or _disk_full(index_dir, low)):
        return BotError(
            f"The disk of the index in {where} is full ({free_mb(index_dir):.1f} MB free). Free "
            "some space and run again: every article indexed before is kept, and one cut short "
            "is rolled back (now, or by the next run)."
        )
    return BotError(f"The index at {where} failed ({text[:300]}).")


def free_mb(path: Path) -> float:
    """Free space on the file system of `path` (or of its nearest existing parent), in MB."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free / 2**20
    return float("inf")


def _disk_full(index_dir: Path, low: str) -> bool:
    if "no space" in low or "disk is full" in low or "database or disk is full" in low:
        return True
    # Chroma's Rust core reports a failed write as "Error in compaction"; a nearly full disk
    # is the usual reason.
    return "compaction" in low and free_mb(index_dir) < 1.0


def _unreachable(exc: BaseException) -> bool:
    try:
        import httpx
    except ImportError:  # pragma: no cover - chromadb depends on httpx
        return False
    if isinstance(exc, httpx.TransportError):
        return True
    return (
        isinstance(exc, ValueError) and "could not connect to a chroma server" in str(exc).lower()
    )


class Guarded:
    """A Chroma client or collection whose calls raise BotErrors (see `describe`)."""

    def __init__(self, target: Any, where: str, index_dir: Path | None) -> None:
        self._target, self._where, self._index_dir = target, where, index_dir

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = value(*args, **kwargs)
            except Exception as exc:
                error = describe(exc, self._where, self._index_dir)
                log.warning("Chroma %s failed on %s: %r", name, self._where, exc)
                raise error from exc
            return self._wrap(result)

        return call

    def _wrap(self, result: Any) -> Any:
        from chromadb.api.models.Collection import Collection

        if isinstance(result, Collection):
            return Guarded(result, self._where, self._index_dir)
        return result


def is_missing(exc: BotError) -> bool:
    """Whether Chroma said the collection does not exist (deleted, or made anew, by another
    process)."""
    from chromadb.errors import NotFoundError

    return isinstance(exc.__cause__, NotFoundError)


def guarded(target: Any, where: str, index_dir: Path | None) -> Any:
    return Guarded(target, where, index_dir)


def call(fn: Callable[[], Any], where: str, index_dir: Path | None) -> Any:
    """Run one Chroma call outside a guarded object (opening the client)."""
    try:
        return fn()
    except Exception as exc:
        raise describe(exc, where, index_dir) from exc
