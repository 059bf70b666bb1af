"""Errors a user can fix. The CLI turns them into one line on stderr and exit status 2."""


class UserError(Exception):
    """Bad input: a config field, a file, a CLI argument. The message names it and what is expected."""


class RunFailed(Exception):
    """A run that started but cannot finish (divergence, broken data). It is recorded as failed."""
