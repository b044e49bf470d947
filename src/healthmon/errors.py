"""Errors that stop the start with a message for a person, not a traceback."""


class StartupError(RuntimeError):
    """A part cannot start (a port taken, a broker unreachable, an extra missing)."""
