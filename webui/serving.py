"""Where and how the web UI is served: off localhost only with a login; how many answers run
at once."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from bot.errors import BotError
from bot.settings import Settings


@dataclass
class LaunchOptions:
    host: str
    port: int
    auth: list[tuple[str, str]] | None
    max_file_size: str


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def launch_options(settings: Settings) -> LaunchOptions:
    """Where and how to serve; off localhost only with a username and password."""
    user = settings.ui_username or ""
    password = settings.ui_password.get_secret_value() if settings.ui_password else ""
    if bool(user) != bool(password):
        raise BotError("Set both UI_USERNAME and UI_PASSWORD, or neither.")
    if not is_loopback(settings.ui_host) and not user:
        raise BotError(
            f"UI_HOST={settings.ui_host} would let other machines use the chat: set UI_USERNAME "
            "and UI_PASSWORD as well, or keep UI_HOST=127.0.0.1."
        )
    return LaunchOptions(
        host=settings.ui_host,
        port=settings.ui_port,
        auth=[(user, password)] if user else None,
        max_file_size=f"{int(settings.max_upload_mb * 1024 * 1024)}b",
    )


def answer_concurrency(settings: Settings) -> int:
    if settings.ui_concurrency:
        return settings.ui_concurrency
    remote = settings.llm_backend in ("openai", "fake") or (
        settings.llm_backend == "auto" and settings.llm_base_url
    )
    return 4 if remote else 1
