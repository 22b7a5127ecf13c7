"""Exceptions raised by cvmatch.

Every failure that a user can cause (a bad photo, a bad catalogue row, a damaged index
file) raises a subclass of :class:`CvmatchError` whose message says what was wrong and
what to do about it. The command-line tool turns these into one line and an exit code.
"""


class CvmatchError(Exception):
    """Base class of every error that cvmatch raises on purpose."""


class ParameterError(CvmatchError, ValueError):
    """An argument is outside what the function accepts (an unknown preset, a
    negative count, a confidence outside 0 to 1, an empty catalogue...)."""


class ImageError(CvmatchError):
    """A photo or cover image could not be read, or is not usable."""


class MissingExtraError(ImageError):
    """The file needs an optional dependency that is not installed."""


class CatalogueError(CvmatchError):
    """A catalogue CSV is malformed or names images that cannot be used."""


class IndexFormatError(CvmatchError):
    """An index file is damaged, from another version, or not an index at all."""


class IndexStateError(CvmatchError):
    """An operation does not fit the index as it is (unknown id, empty index...)."""
