"""Saving and loading a :class:`~cvmatch.matcher.CoverIndex`.

The file format
---------------
An index file is a ZIP archive of NumPy ``.npy`` arrays (what :func:`numpy.savez`
writes), read back with pickling disabled, so loading a file never runs code from it.
Its members:

``metadata``
    UTF-8 JSON (as a ``uint8`` array): ``format`` (always ``"cvmatch-index"``),
    ``format_version``, ``preset``, ``seed``, the books (id, title, author, isbn,
    goodreads_id), the covers (book id, image path, image width and height), and the
    images skipped at build time with the reason.
``top_centres``, ``word_centres``, ``word_offsets``
    The vocabulary tree (see :class:`cvmatch.vocabulary.Vocabulary`).
``keypoints``, ``descriptors``, ``words``
    Every cover's keypoints (``float32`` x, y), descriptors (``uint8``) and visual
    words (``int32``), cover after cover.
``cover_offsets``
    ``int64``; cover ``i`` owns rows ``cover_offsets[i]`` to
    ``cover_offsets[i + 1] - 1`` of the three arrays above.

A file is written under a temporary name in the same folder and renamed over the old
one only once it is complete, so a crash during a save leaves the old file as it was.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

from .catalogue import Book
from .errors import IndexFormatError, IndexStateError
from .features import PRESETS, Features, get_preset
from .matcher import CoverIndex
from .vocabulary import Vocabulary

FORMAT_NAME = "cvmatch-index"
FORMAT_VERSION = 1

#: What every message about a damaged index tells the user to do.
_REBUILD = "rebuild it with 'cvmatch build'"

#: The first bytes of every file that :func:`numpy.savez` writes (a ZIP local header).
_ZIP_SIGNATURE = b"PK\x03\x04"

_ARRAYS = (
    "metadata",
    "top_centres",
    "word_centres",
    "word_offsets",
    "keypoints",
    "descriptors",
    "words",
    "cover_offsets",
)


def save_index(index: CoverIndex, path) -> None:
    """Write ``index`` to ``path`` atomically, replacing any existing file.

    Parameters
    ----------
    index : CoverIndex
    path : str or os.PathLike

    Raises
    ------
    IndexStateError
        ``path`` is a directory, or its folder cannot be written to; the message
        says why.
    """
    path = Path(path)
    if path.is_dir():
        raise IndexStateError(f"{path}: is a directory, not an index file")
    if not path.parent.is_dir():
        raise IndexStateError(
            f"{path}: the folder {path.parent} does not exist; create it, or save "
            "the index in an existing folder"
        )
    arrays = _to_arrays(index)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        # Unlike tempfile's private 0600 files, this one gets the umask's mode, as a
        # file written in place would; replacing a file keeps that file's mode.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise IndexStateError(f"{path}: cannot write here ({error.strerror})") from None
    try:
        with open(descriptor, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise IndexStateError(
                f"{path}: cannot be written ({error.strerror})"
            ) from None
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    # Makes the rename itself durable; some systems cannot open folders, which is fine.
    try:
        descriptor = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _to_arrays(index: CoverIndex) -> dict:
    covers = index.covers
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "preset": index.preset.name,
        "seed": index.vocabulary.seed,
        "books": [vars(book) for book in index.books.values()],
        "covers": [
            {
                "book_id": cover.book_id,
                "image": cover.image,
                "size": list(cover.features.image_size),
            }
            for cover in covers
        ],
        "skipped": [list(item) for item in index.skipped],
    }
    size = index.preset.descriptor_size
    lengths = [len(cover.features) for cover in covers]
    return {
        "metadata": np.frombuffer(json.dumps(metadata).encode("utf-8"), np.uint8),
        "top_centres": index.vocabulary.top_centres_,
        "word_centres": index.vocabulary.word_centres_,
        "word_offsets": index.vocabulary.word_offsets_,
        "keypoints": _stack([c.features.keypoints for c in covers], (0, 2), np.float32),
        "descriptors": _stack(
            [c.features.descriptors for c in covers], (0, size), np.uint8
        ),
        "words": _stack([c.words for c in covers], (0,), np.int32),
        "cover_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
    }


def _stack(parts, empty_shape, dtype):
    return (
        np.concatenate(parts).astype(dtype) if parts else np.empty(empty_shape, dtype)
    )


def load_index(path) -> CoverIndex:
    """Read an index written by :func:`save_index`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    CoverIndex

    Raises
    ------
    IndexFormatError
        The file is missing, a directory, empty, truncated, not a cvmatch index,
        from a newer format version, or internally inconsistent. Nothing in the
        file is executed.

    Examples
    --------
    >>> import cvmatch
    >>> catalogue = cvmatch.read_catalogue("sample_covers/catalogue.csv")[:3]
    >>> index = cvmatch.CoverIndex.build(catalogue, preset="orb", branching=8)
    >>> cvmatch.save_index(index, "/tmp/doctest-index.cvmatch")
    >>> len(cvmatch.load_index("/tmp/doctest-index.cvmatch").books)
    3
    """
    path = Path(path)
    if path.is_dir():
        raise IndexFormatError(f"{path}: is a directory, not an index file")
    if not path.is_file():
        raise IndexFormatError(f"{path}: no such index file")
    try:
        with path.open("rb") as handle:
            signature = handle.read(len(_ZIP_SIGNATURE))
    except OSError as error:
        raise IndexFormatError(f"{path}: cannot be read ({error.strerror})") from None
    if not signature:
        raise IndexFormatError(
            f"{path}: the file is empty, not an index; build one with 'cvmatch build'"
        )
    if signature != _ZIP_SIGNATURE:
        # Not even a ZIP archive (a .npy, a pickle, random bytes): say so, rather than
        # pass on NumPy's advice to load the file with pickling enabled.
        raise IndexFormatError(
            f"{path}: not a cvmatch index (not a ZIP archive of arrays); "
            "build one with 'cvmatch build'"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in _ARRAYS if name not in archive.files]
            if missing:
                raise IndexFormatError(
                    f"{path}: not a cvmatch index (no {', '.join(missing)}); "
                    "build one with 'cvmatch build'"
                )
            arrays = {name: archive[name] for name in _ARRAYS}
    except IndexFormatError:
        raise
    except MemoryError as error:
        raise IndexFormatError(
            f"{path}: an array in the index declares more data than fits in memory "
            f"({_short(error)}); if it is damaged, {_REBUILD}"
        ) from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
        raise IndexFormatError(
            f"{path}: not a cvmatch index, or a damaged one ({_short(error)}); "
            f"{_REBUILD}"
        ) from None
    try:
        return _from_arrays(arrays)
    except IndexFormatError as error:
        raise IndexFormatError(f"{path}: {error}") from None
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as error:
        raise IndexFormatError(
            f"{path}: damaged index ({_short(error)}); {_REBUILD}"
        ) from None


def _short(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) < 120 else text[:117] + "..."


def _from_arrays(arrays: dict) -> CoverIndex:
    metadata = json.loads(arrays["metadata"].tobytes().decode("utf-8"))
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise IndexFormatError("not a cvmatch index")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise IndexFormatError(
            f"index format version {version!r} is newer than this cvmatch reads "
            f"({FORMAT_VERSION}); upgrade cvmatch or rebuild the index"
        )
    if metadata.get("preset") not in PRESETS:
        raise IndexFormatError(
            f"unknown feature preset {metadata.get('preset')!r}; the index is damaged "
            f"or from another cvmatch version; {_REBUILD}"
        )
    preset = get_preset(metadata["preset"])
    vocabulary = Vocabulary.from_arrays(
        preset,
        arrays["top_centres"],
        arrays["word_centres"],
        arrays["word_offsets"],
        seed=int(metadata["seed"]),
    )
    _check_vocabulary(vocabulary, preset)

    offsets = arrays["cover_offsets"]
    covers = metadata["covers"]
    keypoints, descriptors, words = (
        arrays["keypoints"],
        arrays["descriptors"],
        arrays["words"],
    )
    total = len(keypoints)
    if (
        len(offsets) != len(covers) + 1
        or offsets[0] != 0
        or offsets[-1] != total
        or np.any(np.diff(offsets) < 0)
        or descriptors.shape != (total, preset.descriptor_size)
        or keypoints.shape != (total, 2)
        or words.shape != (total,)
        or (total and (words.min() < 0 or words.max() >= vocabulary.n_words))
    ):
        raise IndexFormatError(f"damaged index (cover arrays disagree); {_REBUILD}")
    # A NaN keypoint would not fail here but silently turn every match into none.
    # A sum is NaN or infinite when any term is, and needs no array of flags.
    if not np.isfinite(keypoints.sum(dtype=np.float64)) or (
        descriptors.dtype.kind == "f"
        and not np.isfinite(descriptors.sum(dtype=np.float64))
    ):
        raise IndexFormatError(
            "damaged index (cover keypoints or descriptors that are not numbers); "
            f"{_REBUILD}"
        )

    index = CoverIndex(preset.name, vocabulary)
    for record in metadata["books"]:
        book = Book(
            **{
                key: str(record[key])
                for key in ("id", "title", "author", "isbn", "goodreads_id")
            }
        )
        index.books[book.id] = book
    for number, record in enumerate(covers):
        if record["book_id"] not in index.books:
            raise IndexFormatError(
                f"damaged index (a cover names an unknown book); {_REBUILD}"
            )
        start, end = offsets[number], offsets[number + 1]
        features = Features(
            keypoints=keypoints[start:end],
            descriptors=descriptors[start:end],
            image_size=tuple(int(side) for side in record["size"]),
        )
        index._add_cover(
            record["book_id"], str(record["image"]), features, words[start:end]
        )
    index.skipped = [tuple(item) for item in metadata.get("skipped", [])]
    return index


def _check_vocabulary(vocabulary: Vocabulary, preset) -> None:
    dim = preset.descriptor_size * 8 if preset.binary else preset.descriptor_size
    top, centres, offsets = (
        vocabulary.top_centres_,
        vocabulary.word_centres_,
        vocabulary.word_offsets_,
    )
    if (
        top.ndim != 2
        or top.shape[1] != dim
        or centres.ndim != 2
        or centres.shape[1] != dim
        or offsets.shape != (len(top) + 1,)
        or offsets[0] != 0
        or offsets[-1] != len(centres)
        or np.any(np.diff(offsets) < 1)
        or not np.all(np.isfinite(centres))
        or not np.all(np.isfinite(top))
    ):
        raise IndexFormatError(
            f"damaged index (vocabulary arrays disagree); {_REBUILD}"
        )
