"""Errors a user can cause and fix. The CLI prints them as one line and exits with code 2."""


class S2SError(Exception):
    """Base class: the message says what was wrong, where, and how to fix it."""


class ConfigError(S2SError):
    """A config file, a command-line override or a registry name is wrong."""


class DataError(S2SError):
    """An input file is missing, empty, malformed or not UTF-8."""


class CheckpointError(S2SError):
    """A checkpoint is missing, corrupt, truncated or from an incompatible version."""


class MissingExtraError(S2SError):
    """A feature needs an optional dependency that is not installed (``pip install 's2s-summarizer[...]'``)."""
