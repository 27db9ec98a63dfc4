"""The one user-facing error type."""


class BotError(Exception):
    """An error whose message fits a chat window or a terminal and says how to fix it."""
