"""Exceptions for problems the user can fix: bad configs, missing data, unreadable run state.

The driver turns any `UnasError` into one message and exit code 2 (a full traceback only
with ``--debug``), so each message must name the value, what was expected and the fix.
"""


class UnasError(Exception):
    """Base class of the errors caused by user input, not by a bug."""


class ConfigError(UnasError):
    """A config file, a config field or a command-line option is invalid."""


class DatasetError(UnasError):
    """A dataset's files are missing, malformed or in an unknown layout."""


class JournalError(UnasError):
    """A run's journal or state directory cannot be read, written or resumed."""


class InvalidArchitectureError(ValueError):
    """An architecture breaks a rule of its search space (raised by `SearchSpace.validate`)."""
