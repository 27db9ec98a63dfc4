"""Prompt files in `prompts/`, loaded by name and rendered strictly."""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


@cache
def load(name: str) -> str:
    return (PROMPTS_DIR / f"{name}.txt").read_text(encoding="utf-8")


def render(name: str, **values: object) -> str:
    """Fill `prompts/<name>.txt`; a missing or unexpected variable is an error, not a blank."""
    template = load(name)
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    missing, extra = fields - values.keys(), values.keys() - fields
    if missing or extra:
        raise KeyError(f"prompt {name!r}: missing {sorted(missing)}, unexpected {sorted(extra)}")
    return template.format(**values).strip()
