"""Stage 6: the whole pipeline, a catalogue in and one title (or none) per photo out.

:class:`CoverIndex` holds everything a query needs: the feature preset, the visual
vocabulary, the inverted index, and each cover's keypoints and descriptors for
verification. A query quantises the photo's descriptors, takes the covers with the best
TF-IDF scores, verifies each with a homography, ranks books by verified inliers, and
names the best book only when its evidence is strong and clearly ahead of the
runner-up.

How confident a match is
------------------------
With ``n1`` inliers for the best book and ``n2`` for the best other book::

    confidence = (1 - n2 / n1) * (1 - exp(-n1 / STRONG_INLIERS))

The first factor is the best book's lead over the runner-up: two different covers that
both fit the photo (a series with a shared design, say) leave it near 0. The second
grows with the amount of evidence: at ``STRONG_INLIERS`` inliers it is 0.63, at three
times that 0.95. A result below ``MIN_INLIERS`` inliers or below the confidence
threshold is no match. Persistence lives in :mod:`cvmatch.storage`.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from dataclasses import dataclass, field

import numpy as np

from . import tuning
from .catalogue import Book, CatalogueEntry
from .errors import ImageError, IndexStateError, ParameterError
from .features import Features, extract_features, get_preset, matching_descriptors
from .images import load_image
from .inverted_index import InvertedIndex
from .verification import unique_words, verify, word_inliers
from .vocabulary import Vocabulary

logger = logging.getLogger("cvmatch")


@dataclass(frozen=True)
class Cover:
    """One catalogue image of a book, with the features used to verify it."""

    book_id: str
    image: str
    features: Features
    words: np.ndarray


@dataclass(frozen=True)
class Candidate:
    """A book that was considered for a photo.

    Attributes
    ----------
    book : Book
    cover : str
        The catalogue image of the book that fitted best.
    score : float
        TF-IDF cosine similarity of that cover to the photo.
    inliers : int
        Verified correspondences (0 when verification rejected it).
    corners : list of [x, y] or None
        The cover's corners in original photo pixels (top-left, top-right,
        bottom-right, bottom-left), when verified.
    """

    book: Book
    cover: str
    score: float
    inliers: int
    corners: list | None

    def to_dict(self) -> dict:
        """Return the candidate as plain JSON-ready values."""
        return {
            **self.book.to_dict(),
            "cover": self.cover,
            "score": round(float(self.score), 4),
            "inliers": self.inliers,
            "corners": self.corners,
        }


@dataclass(frozen=True)
class MatchResult:
    """The answer for one photo.

    Attributes
    ----------
    photo : str
        The photo as given.
    book : Book or None
        The recognised book; None means no match.
    confidence : float
        0 to 1; see the module documentation for how it is computed.
    inliers : int
        Verified correspondences of the recognised cover (0 for no match).
    corners : list of [x, y] or None
        The recognised cover's corners in the photo's original pixels.
    runners_up : list of Candidate
        Other books considered, best first.
    reason : str
        For no match, why (too few features, no candidate verified, ambiguous...).
    cover : str
        The catalogue image of the recognised book that fitted best, or empty.
    """

    photo: str
    book: Book | None
    confidence: float
    inliers: int
    corners: list | None
    runners_up: list = field(default_factory=list)
    reason: str = ""
    cover: str = ""

    @property
    def matched(self) -> bool:
        """Whether a book was recognised."""
        return self.book is not None

    @property
    def goodreads_url(self) -> str:
        """The recognised book's Goodreads link, or empty."""
        return self.book.goodreads_url if self.book else ""

    def to_dict(self) -> dict:
        """Return the result as plain JSON-ready values."""
        return {
            "photo": self.photo,
            "matched": self.matched,
            "book": self.book.to_dict() if self.book else None,
            "confidence": round(float(self.confidence), 4),
            "inliers": self.inliers,
            "corners": self.corners,
            "cover": self.cover,
            "reason": self.reason,
            "runners_up": [candidate.to_dict() for candidate in self.runners_up],
        }


def confidence_of(best_inliers: int, runner_up_inliers: int) -> float:
    """Confidence of naming a book, from its inliers and the runner-up's.

    Examples
    --------
    >>> round(confidence_of(80, 0), 2)
    0.86
    >>> confidence_of(30, 30)
    0.0
    """
    if best_inliers <= 0:
        return 0.0
    lead = 1.0 - min(runner_up_inliers, best_inliers) / best_inliers
    evidence = 1.0 - math.exp(-best_inliers / tuning.STRONG_INLIERS)
    return lead * evidence


def _cover_features(image_path, preset):
    """Features of one catalogue cover, or the reason it cannot be indexed."""
    try:
        cover = load_image(
            image_path, tuning.COVER_MAX_SIDE, min_side=tuning.COVER_MIN_SIDE
        )
    except ImageError as error:
        # The reason is kept next to the image's path, which the message starts with.
        return str(error).removeprefix(f"{image_path}: ")
    width, height = cover.original_size
    if min(width, height) < tuning.COVER_MIN_NATIVE_SIDE:
        return (
            f"too small ({width}x{height} pixels; covers need at least "
            f"{tuning.COVER_MIN_NATIVE_SIDE} on each side)"
        )
    features = extract_features(cover.pixels, preset, tuning.COVER_FEATURES)
    if len(features) < tuning.MIN_FEATURES:
        return (
            f"too few features: {len(features)}, at least {tuning.MIN_FEATURES} needed"
        )
    return features


class CoverIndex:
    """A searchable catalogue of book covers.

    Build one with :meth:`build` from a catalogue, or load a saved one with
    :func:`cvmatch.load_index`; then call :meth:`match` on photos.

    Parameters
    ----------
    preset : str
        Feature preset name, ``"rootsift"`` or ``"orb"``.
    vocabulary : Vocabulary
        A fitted vocabulary for that preset.

    Attributes
    ----------
    books : dict
        Book id to :class:`~cvmatch.catalogue.Book`.
    covers : list of Cover
        Every indexed cover image.
    skipped : list of (str, str)
        Cover images left out at build or add time, with the reason.

    Examples
    --------
    >>> import cvmatch
    >>> catalogue = cvmatch.read_catalogue("sample_covers/catalogue.csv")
    >>> index = cvmatch.CoverIndex.build(catalogue[:10], preset="orb", branching=16)
    >>> index.match("sample_covers/photos/query02.png").book.title
    'Next'
    """

    def __init__(self, preset: str, vocabulary: Vocabulary):
        self.preset = get_preset(preset)
        self.vocabulary = vocabulary
        self.books: dict[str, Book] = {}
        self.covers: list[Cover] = []
        self.skipped: list[tuple[str, str]] = []
        self._inverted = InvertedIndex(vocabulary.n_words)

    @classmethod
    def build(
        cls,
        catalogue: list[CatalogueEntry],
        preset: str = "orb",
        branching: int | None = None,
        seed: int = 0,
        n_jobs: int = 1,
        progress=None,
    ):
        """Extract features from every cover, learn a vocabulary and index them.

        Parameters
        ----------
        catalogue : list of CatalogueEntry
            From :func:`cvmatch.read_catalogue`.
        preset : str, optional
            ``"orb"`` (the default: about 60 % of the query time, a smaller
            index) or ``"rootsift"`` (a point more accurate on the benchmark).
        branching : int, optional
            Shape of the vocabulary tree, which holds up to ``branching ** 2``
            visual words; by default chosen from the catalogue's size.
        seed : int, optional
            Seeds the vocabulary; the same catalogue and seed give the same index.
        n_jobs : int, optional
            Processes for feature extraction (-1: one per core).
        progress : callable, optional
            Called with the number of cover images done after each one.

        Returns
        -------
        CoverIndex

        Raises
        ------
        ParameterError
            The catalogue is empty, the preset unknown, or ``seed`` or ``n_jobs``
            out of range.
        IndexStateError
            No cover in the catalogue could be indexed.
        """
        if not catalogue:
            raise ParameterError(
                "the catalogue is empty; give CoverIndex.build at least one book"
            )
        feature_preset = get_preset(preset)
        _check_seed(seed, branching)
        _check_jobs(n_jobs)
        extracted = _extract_all(catalogue, feature_preset, n_jobs, progress)
        return cls._from_extracted(extracted, preset, branching, seed)

    @classmethod
    def _from_extracted(cls, extracted, preset, branching, seed):
        usable = [
            features for _, _, features in extracted if isinstance(features, Features)
        ]
        if not usable:
            reasons = "; ".join(f"{path}: {why}" for _, path, why in extracted[:3])
            more = f" (and {len(extracted) - 3} more)" if len(extracted) > 3 else ""
            raise IndexStateError(
                f"no cover in the catalogue could be indexed: {reasons}{more}; check "
                "that the images are real cover pictures"
            )
        descriptors = np.concatenate([features.descriptors for features in usable])
        vocabulary = Vocabulary(get_preset(preset), branching=branching, seed=seed)
        index = cls(preset, vocabulary.fit(descriptors))
        logger.info(
            "vocabulary of %d visual words from %d descriptors",
            index.vocabulary.n_words,
            len(descriptors),
        )
        index._index_extracted(extracted)
        return index

    def _index_extracted(self, extracted) -> int:
        usable = [item for item in extracted if isinstance(item[2], Features)]
        # In the order of ``usable``, which the loop below follows.
        words = iter(
            self.vocabulary.quantise_many([item[2].descriptors for item in usable])
        )
        for entry, path, features in extracted:
            if isinstance(features, str):
                self.skipped.append((str(path), features))
                logger.warning(
                    "cover %s of book %s left out: %s", path, entry.book.id, features
                )
                continue
            self.books.setdefault(entry.book.id, entry.book)
            self._add_cover(entry.book.id, str(path), features, next(words))
        return len(usable)

    def _add_cover(self, book_id: str, image: str, features: Features, words=None):
        if words is None:
            words = self.vocabulary.quantise(features.descriptors)
        self.covers.append(Cover(book_id, image, features, words))
        self._inverted.add(words)

    def add(self, catalogue: list[CatalogueEntry], n_jobs: int = 1, progress=None):
        """Add books to the index with the existing vocabulary (no retraining).

        Cover images that cannot be indexed are listed in :attr:`skipped`.

        Returns
        -------
        int
            The number of cover images added.

        Raises
        ------
        ParameterError
            ``n_jobs`` is neither -1 nor a positive number.
        IndexStateError
            A book id is already in the index (remove it first to replace it).
        """
        _check_jobs(n_jobs)
        for entry in catalogue:
            if entry.book.id in self.books:
                raise IndexStateError(
                    f"book id {entry.book.id!r} is already in the index; "
                    "remove it first to replace it"
                )
        extracted = _extract_all(catalogue, self.preset, n_jobs, progress)
        return self._index_extracted(extracted)

    def remove(self, book_id: str) -> int:
        """Remove a book and all its covers; return how many covers went.

        Raises
        ------
        IndexStateError
            No book has that id.
        """
        if book_id not in self.books:
            raise IndexStateError(f"no book with id {book_id!r} in the index")
        positions = [
            i for i, cover in enumerate(self.covers) if cover.book_id == book_id
        ]
        for position in reversed(positions):
            del self.covers[position]
            self._inverted.remove(position)
        del self.books[book_id]
        return len(positions)

    def match(self, photo, top: int = 5, min_confidence=None) -> MatchResult:
        """Recognise the book in a photo.

        Parameters
        ----------
        photo : str, os.PathLike, bytes or binary file object
            The photo.
        top : int, optional
            How many runners-up to keep in the result.
        min_confidence : float, optional
            Report no match below this confidence; defaults to
            :data:`cvmatch.tuning.MIN_CONFIDENCE`.

        Returns
        -------
        MatchResult
            ``result.book`` is None when no catalogue book is recognised.

        Raises
        ------
        ParameterError
            ``top`` is negative or ``min_confidence`` outside 0 to 1.
        ImageError
            The photo cannot be read.
        """
        if not _is_whole(top) or top < 0:
            raise ParameterError(
                f"top must be a whole number of runners-up, 0 or more, not {top!r}"
            )
        if min_confidence is not None and not (
            isinstance(min_confidence, numbers.Real) and 0 <= min_confidence <= 1
        ):
            raise ParameterError(
                f"min_confidence must be a number from 0 to 1, not {min_confidence!r}"
            )
        name = os.fspath(photo) if isinstance(photo, (str, os.PathLike)) else "<image>"
        loaded = load_image(photo, tuning.PHOTO_MAX_SIDE)
        features = extract_features(loaded.pixels, self.preset, tuning.PHOTO_FEATURES)
        logger.info(
            "%s: %d keypoints at %dx%d", name, len(features), *features.image_size
        )
        if min_confidence is None:
            min_confidence = tuning.MIN_CONFIDENCE
        result = self._match_features(name, features, loaded.scale, top, min_confidence)
        if result.matched:
            logger.info("%s: %s, %d inliers", name, result.book.title, result.inliers)
        else:
            logger.info("%s: no match (%s)", name, result.reason)
        return result

    def _match_features(self, name, features, scale, top, min_confidence):
        if len(features) < tuning.MIN_FEATURES:
            return MatchResult(
                name,
                None,
                0.0,
                0,
                None,
                [],
                f"too few features in the photo: {len(features)}, at least "
                f"{tuning.MIN_FEATURES} needed",
            )
        if not self.covers:
            return MatchResult(name, None, 0.0, 0, None, [], "the index is empty")

        words = self.vocabulary.quantise(features.descriptors)
        scores = self._inverted.scores(words)
        count = min(tuning.CANDIDATES, len(scores))
        shortlist = np.argpartition(-scores, count - 1)[:count]
        shortlist = shortlist[np.argsort(-scores[shortlist], kind="stable")]

        photo_unique = unique_words(words)
        quick = [
            word_inliers(
                features.keypoints,
                photo_unique,
                self.covers[position].features.keypoints,
                unique_words(self.covers[position].words),
            )
            for position in shortlist
        ]
        # Full verification goes first to the covers with the best word geometry and
        # to those with the best TF-IDF scores, taken in turn, in case the word check
        # was misled (a small vocabulary makes its correspondences noisy). It goes on
        # past the first few only while no cover has been verified.
        by_geometry = np.argsort(-np.array(quick), kind="stable")
        turns = zip(by_geometry.tolist(), range(len(shortlist)))
        order = list(dict.fromkeys(p for pair in turns for p in pair))
        order = order[: tuning.MAX_VERIFIED]

        photo_descriptors = matching_descriptors(features.descriptors, self.preset)
        best_by_book: dict[str, Candidate] = {}
        for checked, position in enumerate(shortlist[order]):
            if checked >= tuning.VERIFIED and any(
                c.inliers >= tuning.MIN_INLIERS for c in best_by_book.values()
            ):
                break
            cover = self.covers[position]
            verification = verify(
                features,
                photo_descriptors,
                cover.features,
                matching_descriptors(cover.features.descriptors, self.preset),
                self.preset,
                tuning.MIN_INLIERS,
            )
            corners = None
            if verification.corners is not None:
                # In float64, so that 68.6 is not printed as 68.5999984741211.
                corners = (verification.corners.astype(np.float64) / scale).round(1)
                corners = corners.tolist()
            candidate = Candidate(
                book=self.books[cover.book_id],
                cover=cover.image,
                score=float(scores[position]),
                inliers=verification.inliers,
                corners=corners,
            )
            known = best_by_book.get(cover.book_id)
            if known is None or candidate.inliers > known.inliers:
                best_by_book[cover.book_id] = candidate

        ranked = sorted(
            best_by_book.values(), key=lambda c: (c.inliers, c.score), reverse=True
        )
        best, others = ranked[0], ranked[1:]
        runner_up = others[0].inliers if others else 0
        confidence = confidence_of(best.inliers, runner_up)
        if best.inliers < tuning.MIN_INLIERS:
            reason = (
                "no catalogue cover verified"
                if best.inliers == 0
                else f"too few inliers: {best.inliers}, at least "
                f"{tuning.MIN_INLIERS} needed"
            )
            return MatchResult(name, None, confidence, 0, None, ranked[:top], reason)
        if confidence < min_confidence:
            # Rounded down, so that 0.996 below 1.0 does not read "1.00 below 1.0".
            shown = math.floor(confidence * 100) / 100
            reason = f"confidence {shown:.2f} below the threshold {min_confidence}"
            if runner_up > 0:
                reason = f"ambiguous: {reason}"
            return MatchResult(name, None, confidence, 0, None, ranked[:top], reason)
        return MatchResult(
            name,
            best.book,
            confidence,
            best.inliers,
            best.corners,
            others[:top],
            cover=best.cover,
        )


def _is_whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


#: scikit-learn takes k-means seeds from 0 to 2**32 - 1, and the vocabulary seeds the
#: k-means of each of its ``branching`` branches with ``seed + 1 + branch``.
_LARGEST_KMEANS_SEED = 2**32 - 1


def highest_seed(branching: int | None = None) -> int:
    """The largest vocabulary seed that :meth:`CoverIndex.build` accepts.

    Parameters
    ----------
    branching : int, optional
        The vocabulary's branching; by default the largest it is chosen to be.

    Returns
    -------
    int
    """
    return _LARGEST_KMEANS_SEED - (branching or tuning.MAX_BRANCHING)


def _check_seed(seed, branching) -> None:
    highest = highest_seed(branching)
    if not _is_whole(seed) or not 0 <= seed <= highest:
        raise ParameterError(
            f"seed must be a whole number from 0 to {highest}, not {seed!r}"
        )


def _check_jobs(n_jobs) -> None:
    if not _is_whole(n_jobs) or not (n_jobs == -1 or n_jobs >= 1):
        raise ParameterError(
            "n_jobs must be -1 (one process per core) or a positive number of "
            f"processes, not {n_jobs!r}"
        )


def _extract_all(catalogue, preset, n_jobs, progress):
    jobs = [(entry, path) for entry in catalogue for path in entry.images]
    if n_jobs == 1:
        results = []
        for done, (entry, path) in enumerate(jobs, 1):
            results.append((entry, path, _cover_features(path, preset)))
            if progress:
                progress(done)
        return results
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=8)
    features = parallel(delayed(_cover_features)(path, preset) for _, path in jobs)
    results = []
    for done, ((entry, path), found) in enumerate(zip(jobs, features), 1):
        results.append((entry, path, found))
        if progress:
            progress(done)
    return results
