"""Errors a user can fix, and how any error is said in one line. The CLI turns a UserError into
one line on stderr and exit status 2."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic loads only where a validation error is described
    from pydantic import ValidationError


class UserError(Exception):
    """Bad input: a config field, a file, a CLI argument. The message names it and what is expected."""


class RunFailed(Exception):
    """A run that started but cannot finish (divergence, broken data). It is recorded as failed."""


def first_line(exc: BaseException, default: str = "") -> str:
    """The exception's message on one line: its first non-blank line, else `default`."""
    try:
        text = str(exc)
    except Exception:  # a message that cannot even be built still leaves its class
        text = ""
    return (text.strip().splitlines() or [default])[0].strip()


def error_line(exc: BaseException) -> str:
    """'Class: first line of the message' (the class alone when the message is empty)."""
    reason = first_line(exc)
    return f"{exc.__class__.__name__}: {reason}" if reason else exc.__class__.__name__


def first_problem(exc: ValidationError) -> tuple[str, str]:
    """(dotted field, message) of the first problem pydantic found; an unknown key says so."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
    return field, message
