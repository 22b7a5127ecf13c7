"""Stage 0: a catalogue CSV in, a list of books with their cover images out.

A catalogue is a UTF-8 CSV file with a header row. Columns:

``id`` (required)
    A unique name for the book, used to remove it later.
``image`` (required)
    Path of the cover image, relative to the CSV file. A book with several editions
    lists several paths separated by ``;``.
``title`` (required)
``author``, ``isbn``, ``goodreads_id`` (optional)
    Shown with a match; ``goodreads_id`` (or else ``isbn``) gives the Goodreads link.

Errors name the row (counting the header as row 1) so the file can be fixed. Next
stage: :mod:`cvmatch.images`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import CatalogueError

REQUIRED_COLUMNS = ("id", "image", "title")
OPTIONAL_COLUMNS = ("author", "isbn", "goodreads_id")

GOODREADS_BOOK = "https://www.goodreads.com/book/show/{}"
GOODREADS_ISBN = "https://www.goodreads.com/book/isbn/{}"


@dataclass(frozen=True)
class Book:
    """What is known of one book.

    Attributes
    ----------
    id, title : str
    author, isbn, goodreads_id : str
        Empty when unknown.
    """

    id: str
    title: str
    author: str = ""
    isbn: str = ""
    goodreads_id: str = ""

    @property
    def goodreads_url(self) -> str:
        """The book's Goodreads page, by id or else by ISBN; empty if neither is known.

        Examples
        --------
        >>> Book(id="1", title="Dune", goodreads_id="234225").goodreads_url
        'https://www.goodreads.com/book/show/234225'
        """
        if self.goodreads_id:
            return GOODREADS_BOOK.format(self.goodreads_id)
        if self.isbn:
            return GOODREADS_ISBN.format(self.isbn)
        return ""

    def to_dict(self) -> dict:
        """Return the book's fields and its Goodreads link as a plain dict."""
        return {**asdict(self), "goodreads_url": self.goodreads_url}


@dataclass(frozen=True)
class CatalogueEntry:
    """One book of a catalogue and the paths of its cover images."""

    book: Book
    images: tuple[Path, ...] = field(default_factory=tuple)


_QUOTING = (
    "a field that starts with a quote must end with one, and a quote inside such "
    'a field is written twice ("")'
)


def _clean_isbn(text: str, row: int) -> str:
    isbn = text.replace("-", "").replace(" ", "").upper()
    if isbn and not (
        len(isbn) in (10, 13)
        and isbn[:-1].isdigit()
        and (isbn[-1].isdigit() or isbn[-1] == "X")
    ):
        raise CatalogueError(f"row {row}: {text!r} is not an ISBN-10 or ISBN-13")
    return isbn


def read_catalogue(path) -> list[CatalogueEntry]:
    """Read and check a catalogue CSV.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    list of CatalogueEntry
        In file order. Image paths are resolved against the CSV's folder and checked
        to exist; they are not decoded here.

    Raises
    ------
    CatalogueError
        The file is missing or a directory, not UTF-8 CSV, has no rows, lacks a
        required column, or a row has an empty required field, an unknown image, a
        malformed ISBN or Goodreads id, or an id already used by an earlier row.

    Examples
    --------
    >>> from cvmatch.catalogue import read_catalogue
    >>> books = read_catalogue("sample_covers/catalogue.csv")
    >>> books[0].book.title
    'Next'
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CatalogueError(f"{path}: no such catalogue file") from None
    except IsADirectoryError:
        raise CatalogueError(f"{path}: is a directory, not a catalogue file") from None
    except UnicodeDecodeError:
        raise CatalogueError(
            f"{path}: not a UTF-8 text file; save it as UTF-8 CSV"
        ) from None
    except OSError as error:
        raise CatalogueError(f"{path}: cannot be read ({error.strerror})") from None

    # Strict, so that a quote left open is an error rather than a field that
    # silently swallows every row after it.
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        fieldnames = reader.fieldnames or []
    except csv.Error as error:
        raise CatalogueError(
            f"{path}: row 1: the header is not valid CSV ({error}); {_QUOTING}"
        ) from None
    header = [name.strip() for name in fieldnames]
    if not header:
        raise CatalogueError(
            f"{path}: the catalogue is empty; it needs a header row "
            f"({', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}) and one row per book"
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CatalogueError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must name "
            f"{', '.join(REQUIRED_COLUMNS)} "
            f"(and optionally {', '.join(OPTIONAL_COLUMNS)})"
        )
    reader.fieldnames = header

    entries, first_row_of = [], {}
    row = reader.line_num + 1  # where the next record starts
    try:
        for record in reader:
            entries.append(_entry(record, row, path, first_row_of))
            row = reader.line_num + 1
    except csv.Error as error:
        raise CatalogueError(
            f"{path}: row {row}: not valid CSV ({error}); {_QUOTING}"
        ) from None
    if not entries:
        raise CatalogueError(f"{path}: the catalogue has a header but no books")
    return entries


def _entry(record: dict, row: int, path: Path, first_row_of: dict) -> CatalogueEntry:
    if None in record:
        raise CatalogueError(
            f"{path}: row {row}: more fields than the header has columns"
        )
    values = {key: (value or "").strip() for key, value in record.items()}
    for name in REQUIRED_COLUMNS:
        if not values.get(name):
            raise CatalogueError(f"{path}: row {row}: the {name!r} field is empty")
    book_id = values["id"]
    if book_id in first_row_of:
        raise CatalogueError(
            f"{path}: row {row}: id {book_id!r} is already used by row "
            f"{first_row_of[book_id]}; give each book one row (list several cover "
            "images in one 'image' field, separated by ';')"
        )
    first_row_of[book_id] = row

    goodreads_id = values.get("goodreads_id", "")
    if goodreads_id and not goodreads_id.isdigit():
        raise CatalogueError(
            f"{path}: row {row}: goodreads_id {goodreads_id!r} is not a number"
        )
    try:
        isbn = _clean_isbn(values.get("isbn", ""), row)
    except CatalogueError as error:
        raise CatalogueError(f"{path}: {error}") from None

    images = []
    for name in (part.strip() for part in values["image"].split(";")):
        if not name:
            continue
        image = path.parent / name
        if not image.is_file():
            raise CatalogueError(
                f"{path}: row {row}: image {name!r} not found (looked for {image})"
            )
        images.append(image)
    if not images:
        raise CatalogueError(f"{path}: row {row}: the 'image' field names no file")
    book = Book(
        id=book_id,
        title=values["title"],
        author=values.get("author", ""),
        isbn=isbn,
        goodreads_id=goodreads_id,
    )
    return CatalogueEntry(book=book, images=tuple(images))
