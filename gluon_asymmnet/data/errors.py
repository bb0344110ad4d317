"""Errors and warnings of the data pipeline."""


class DataError(ValueError):
    """A data file or folder is missing, unreadable or malformed; the message names it."""


class CorruptRecordWarning(UserWarning):
    """An image record could not be decoded and was skipped."""
