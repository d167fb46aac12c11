"""Errors with messages meant for people: the CLI and the bot show them as they are."""


class RGPT2Error(Exception):
    """Base class: its message is shown to the user verbatim."""


class CommandError(RGPT2Error):
    """A bad command-line invocation: printed as one line, exit code 2, no traceback."""


class InvalidRequest(RGPT2Error, ValueError):
    """A generation request with a bad option (bars out of range, unknown scheme, ...)."""


class ModelLoadError(RGPT2Error):
    """A model or tokenizer directory that is missing, incomplete or corrupt."""
