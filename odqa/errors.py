"""User-facing errors.

Anything raised as :class:`ODQAError` is a problem with the user's input (a file, a field,
an option) and carries a message that names it and says how to fix it. The CLI prints such
errors without a traceback; everything else is a bug and keeps its traceback.
"""


class ODQAError(Exception):
    """Base class for errors the user can fix."""


class DataError(ODQAError, ValueError):
    """A dataset, corpus or questions file is malformed."""


class IndexLoadError(ODQAError):
    """A saved index is missing, corrupt or of another version."""


class ConfigError(ODQAError, ValueError):
    """Options that contradict each other or name something that does not exist."""
