"""User errors: problems with what the user asked for or gave us, reported as one line (no traceback)."""


class UserError(ValueError):
    """Base of all errors the CLI prints as ``error: <message>`` and exits non-zero."""


class ConfigError(UserError):
    """A bad config file, key, value or override."""


class DataError(UserError):
    """A missing or malformed input file or row; the message names the file (and line)."""
