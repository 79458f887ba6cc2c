"""The project's exception hierarchy.

Every error a user can cause is one of these, carrying a message that names the file,
column, row or field at fault, so the CLI and the web app can show one line instead of a
traceback. This module must never import anything heavy.
"""


class ActiveLabelingError(Exception):
    """Base class of every error this project raises on purpose."""


class InputError(ActiveLabelingError, ValueError):
    """Bad input data or a bad parameter value; the message says where and why."""


class NotFittedError(ActiveLabelingError, AttributeError):
    """A sampler or model was used before ``fit``."""


class BatchSizeWarning(UserWarning):
    """The batch asked for is larger than the pool; the whole pool is returned."""


class StoreLockedError(ActiveLabelingError):
    """Another process holds the project store for writing."""
