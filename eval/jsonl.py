"""JSON Lines files: one JSON value per line, blank lines ignored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line; the value is the json.JSONDecodeError
    itself for a line that is not JSON, so a caller can report or skip it."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, exc


def read_jsonl(path: Path, skip_bad: bool = False) -> list[Any]:
    """Every value of the file; a line that is not JSON raises ValueError naming it, or is
    skipped with `skip_bad` (a line cut short by a killed writer)."""
    values = []
    for number, value in iter_jsonl(path):
        if isinstance(value, json.JSONDecodeError):
            if skip_bad:
                continue
            raise ValueError(f"{path}:{number}: not JSON ({value.msg} at column {value.colno})")
        values.append(value)
    return values
