"""The error every command may raise: one sentence for the operator, exit 1."""


class CommandError(Exception):
    """A problem to tell the operator in one sentence (exit 1)."""
