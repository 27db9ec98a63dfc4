"""Large segments' BM25 postings on local disk, memory-mapped, instead of in each process.

The postings are most of a search state's memory (~550 bytes per passage: a row and a term
frequency per distinct word). A segment is never changed once stored, so a process copies a
large one's postings to a folder of this machine once (`put`, straight from the stored bytes,
without building the arrays), and every process on the machine maps the same files (`get`): the
kernel keeps the pages a query touches, shared between processes and given back under pressure,
rather than each UI replica holding every posting.

Folders are named by the state collection's id (a new one whenever the state is rebuilt) and the
segment's key, and written under a temporary name then renamed: a folder is complete or absent.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np

from bot.index.segments import Postings

log = logging.getLogger(__name__)

MEMBERS = ("terms", "indptr", "rows", "tf")
MIN_ROWS = 50_000  # smaller segments' postings (under ~30 MB) stay in memory
STALE_S = 3600.0  # a folder still under its temporary name after this was left half-written


class PostingsCache:
    def __init__(self, root: Path, min_rows: int = MIN_ROWS) -> None:
        self.root = Path(root)
        self.min_rows = min_rows

    def folder(self, namespace: str, key: str) -> Path:
        return self.root / namespace / key

    def get(self, namespace: str, key: str) -> Postings | None:
        """The postings of segment `key`, mapped from disk; None when not stored (or damaged)."""
        folder = self.folder(namespace, key)
        try:
            arrays = [
                np.load(folder / f"{m}.npy", mmap_mode="r", allow_pickle=False) for m in MEMBERS
            ]
        except (OSError, ValueError):
            return None
        postings = Postings(*arrays)
        if (
            len(postings.indptr) != len(postings.terms) + 1
            or int(postings.indptr[-1]) != len(postings.rows)
            or len(postings.rows) != len(postings.tf)
        ):
            return None
        return postings

    def put(self, namespace: str, key: str, stored: zipfile.ZipFile) -> Postings | None:
        """Copy segment `key`'s postings out of its stored bytes (`Segment.dumps`, an npz) and
        map them; None when this machine's disk refuses them (the caller keeps them in memory)."""
        folder = self.folder(namespace, key)
        tmp = folder.with_name(f".{key}.{uuid.uuid4().hex[:8]}")
        try:
            tmp.mkdir(parents=True)
            for member in MEMBERS:
                with stored.open(f"{member}.npy") as src, (tmp / f"{member}.npy").open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            if folder.exists() and self.get(namespace, key) is None:
                shutil.rmtree(folder, ignore_errors=True)  # damaged: a mapping of it is invalid
            try:
                os.rename(tmp, folder)
            except OSError:  # another process put it first
                shutil.rmtree(tmp, ignore_errors=True)
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            log.warning("could not keep postings of segment %s under %s: %s", key, self.root, exc)
            return None
        return self.get(namespace, key)

    def prune(self, namespace: str, keep: set[str]) -> None:
        """Delete the folders of segments no longer stored (a process mapping one keeps its
        pages until it lets them go)."""
        base = self.root / namespace
        for path in base.iterdir() if base.is_dir() else ():
            if path.name.startswith("."):  # being written, or left by a process killed then
                if time.time() - path.stat().st_mtime > STALE_S:
                    shutil.rmtree(path, ignore_errors=True)
            elif path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
