"""Errors meant for the user: one line that names the file and the reason.

The CLI prints ``str(err)`` of a :class:`CrnnError` without a traceback and exits
with status 2; anything else is a bug and keeps its traceback.
"""


class CrnnError(Exception):
    """A problem with the user's input (data, config, model file), not a bug."""


class DataError(CrnnError):
    """A dataset, image or label that cannot be used."""


class ModelFileError(CrnnError):
    """A model file that is not ours, is damaged, or does not fit its metadata."""


class ConfigError(CrnnError):
    """An unknown or ill-typed configuration key or value."""
