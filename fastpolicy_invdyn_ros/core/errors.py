"""Errors a user can act on, and how they are shown: one line, never a traceback."""
from __future__ import annotations


class InputError(ValueError):
    """A file or value given to the package that it cannot use; the message names it and the problem."""


def one_line(error: BaseException, limit: int = 400) -> str:
    """An error as the single line a tool or node dies with (long library messages cut at ``limit``)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
