"""The one user-facing error type, and the message for any other error."""


class BotError(Exception):
    """An error whose message fits a chat window or a terminal and says how to fix it."""


def unexpected(exc: BaseException) -> str:
    """What a reader is told of an error that is not a BotError (a bug): its kind, and where
    the details are."""
    return f"Something went wrong ({type(exc).__name__}); the server log has details."
