"""The one error type for user mistakes: the CLI prints its message on one line and exits 2."""

from __future__ import annotations


class AutoMLError(Exception):
    """A mistake in the user's input: a file, a column, a param, a family, a server."""


class SpaceError(AutoMLError):
    """An invalid search-space file or an invalid ``--set`` value."""


class DataError(AutoMLError):
    """Data that cannot be loaded or does not fit the requested family or task."""


class StoreError(AutoMLError):
    """A tracking server, storage or store directory that cannot be used."""
