"""Web UI entry point: `python app.py` (what `make run` calls).

It first brings the index in line with DATA_DIR (new or changed articles are ingested,
unchanged ones skipped), then serves the chat. The Gradio chat is not built yet (issue #4):
until it is, this stops after ingestion and says so.
"""

from __future__ import annotations

import sys

from bot.errors import BotError
from bot.settings import Settings
from ingest.pipeline import ingest_paths


def ensure_index(settings: Settings) -> None:
    """Ingest what is missing or stale in DATA_DIR; never deletes articles."""
    print(f"Checking the index against {settings.data_dir} ...", flush=True)
    summary = ingest_paths([settings.data_dir], settings)
    print(summary.report(), flush=True)
    if not summary.ok:
        raise BotError(f"No article in {settings.data_dir} could be ingested (see above).")


def main() -> int:
    settings = Settings()
    try:
        ensure_index(settings)
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        "The index is ready. The chat UI (http://127.0.0.1:7860) is not built yet: "
        "it arrives with issue #4. Until then, inspect the index with `python -m ingest --list`."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
