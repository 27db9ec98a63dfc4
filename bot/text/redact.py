"""Keep API keys and passwords out of logs and error messages.

`install(settings)` puts a filter on the root log handlers that replaces every secret the
settings hold (LLM_API_KEY, EMBED_API_KEY, UI_PASSWORD, a password inside a URL) with `***`,
in messages and tracebacks alike; `redact(text)` does the same for a message shown to a user.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from bot.settings import Settings

MASK = "***"
_secrets: set[str] = set()


def secrets_of(settings: Settings) -> set[str]:
    found = set()
    for secret in (settings.llm_api_key, settings.embed_api_key, settings.ui_password):
        if secret is not None and secret.get_secret_value():
            found.add(secret.get_secret_value())
    for url in (settings.llm_base_url, settings.embed_base_url):
        password = urlsplit(url).password if url else None
        if password:
            found.add(password)
    return {s for s in found if len(s) >= 4}  # shorter ones would mask ordinary words


def redact(text: str, *extra: str | None) -> str:
    """`text` with the installed secrets, and `extra` ones, masked."""
    known = _secrets | {e for e in extra if e and len(e) >= 4}
    for secret in sorted(known, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(settings: Settings) -> None:
    """Redact the settings' secrets from everything the root log handlers write (call after
    logging is configured) and from `redact()`."""
    _secrets.update(secrets_of(settings))
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactFilter) for f in handler.filters):
            handler.addFilter(RedactFilter())
