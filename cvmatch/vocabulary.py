"""Stage 3: descriptors in, visual-word numbers out.

A vocabulary is a two-level tree of k-means centres learned from catalogue
descriptors: a few top centres, each with its own children. A descriptor's visual word
is the nearest child of its nearest top centre. Comparing a descriptor with
``2 * branching`` centres instead of ``branching ** 2`` keeps quantising fast for
large vocabularies. Build and query must quantise the same way, so both go through
:meth:`Vocabulary.quantise`.

ORB descriptors are bit strings. They are clustered as vectors of 0/1 floats (one per
bit): the squared Euclidean distance between two such vectors is their Hamming distance,
so k-means on them groups descriptors that ORB itself would call close, and a centre's
value per bit is the share of its members with that bit set. RootSIFT descriptors are
clustered as they are. Next stage: :mod:`cvmatch.inverted_index`.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.cluster import KMeans

from . import tuning
from .errors import IndexStateError
from .features import FeaturePreset, matching_descriptors

#: Descriptors given to each k-means run per centre it places. K-means settles a centre
#: with a few hundred members; more only slows the fit.
_PER_CENTRE = 60

#: Descriptors quantised together by :meth:`Vocabulary.quantise_many`. Walking the
#: tree costs one small matrix product per top centre that any descriptor reaches,
#: whatever their number: for one cover's 800 descriptors that overhead is most of
#: the time (40 ms a cover, over an hour for 100,000 covers). A block this size keeps
#: its unpacked ORB bits (256 floats each) at 64 MB.
_QUANTISE_BLOCK = 65_536


def _default_branching(n_descriptors: int) -> int:
    branching = round(math.sqrt(n_descriptors / tuning.DESCRIPTORS_PER_WORD))
    return int(min(max(branching, tuning.MIN_BRANCHING), tuning.MAX_BRANCHING))


def _as_vectors(descriptors: np.ndarray, preset: FeaturePreset) -> np.ndarray:
    if preset.binary:
        return np.unpackbits(descriptors, axis=1).astype(np.float32)
    return matching_descriptors(descriptors, preset)


def _kmeans(vectors: np.ndarray, n_centres: int, seed: int) -> np.ndarray:
    distinct = np.unique(vectors, axis=0)
    if len(distinct) <= n_centres:
        return distinct.astype(np.float32)
    kmeans = KMeans(n_clusters=n_centres, n_init=1, max_iter=30, random_state=seed)
    # In float64 scikit-learn computes distances with one matrix product; in float32
    # it copies every block to float64 first, which makes k-means several times slower.
    kmeans.fit(vectors.astype(np.float64))
    return kmeans.cluster_centers_.astype(np.float32)


def _nearest(vectors: np.ndarray, centres: np.ndarray) -> np.ndarray:
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, and |x|^2 is the same for every centre.
    distances = np.einsum("ij,ij->i", centres, centres) - 2.0 * (vectors @ centres.T)
    return distances.argmin(axis=1)


class Vocabulary:
    """A visual vocabulary: a two-level tree of k-means centres.

    Parameters
    ----------
    preset : FeaturePreset
        The feature preset whose descriptors this vocabulary quantises.
    branching : int, optional
        Centres at the top level and at most under each top centre; the vocabulary
        has up to ``branching ** 2`` words (fewer when the catalogue is small). By
        default it is chosen from the number of descriptors given to :meth:`fit`
        (see :data:`cvmatch.tuning.DESCRIPTORS_PER_WORD`).
    seed : int, optional
        Seeds the descriptor sample and k-means: the same descriptors and seed give
        the same vocabulary.

    Attributes
    ----------
    top_centres_ : numpy.ndarray
        ``(t, dim)`` float32 top-level centres, set by :meth:`fit`.
    word_centres_ : numpy.ndarray
        ``(n_words, dim)`` float32 centres of the visual words.
    word_offsets_ : numpy.ndarray
        ``(t + 1,)`` int64: the words under top centre ``i`` are numbers
        ``word_offsets_[i]`` to ``word_offsets_[i + 1] - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from cvmatch.features import PRESETS
    >>> from cvmatch.vocabulary import Vocabulary
    >>> rng = np.random.default_rng(0)
    >>> descriptors = rng.integers(0, 256, (500, 32), dtype=np.uint8)
    >>> vocabulary = Vocabulary(PRESETS["orb"], branching=4, seed=0).fit(descriptors)
    >>> vocabulary.n_words
    16
    >>> vocabulary.quantise(descriptors[:3]).shape
    (3,)
    """

    def __init__(self, preset: FeaturePreset, branching=None, seed=0):
        self.preset = preset
        self.branching = branching
        self.seed = seed

    @property
    def n_words(self) -> int:
        """Number of visual words."""
        return len(self.word_centres_)

    def fit(self, descriptors: np.ndarray):
        """Learn the centres from a seeded sample of ``descriptors``; return ``self``.

        Raises
        ------
        IndexStateError
            Fewer than two distinct descriptors: nothing to build a vocabulary from.
        """
        branching = self.branching or _default_branching(len(descriptors))
        if branching < 2:
            raise IndexStateError(f"branching must be at least 2, not {branching}")
        self.branching = branching
        rng = np.random.default_rng(self.seed)
        sample_size = _PER_CENTRE * branching**2
        if len(descriptors) > sample_size:
            chosen = np.sort(rng.choice(len(descriptors), sample_size, replace=False))
            descriptors = descriptors[chosen]
        vectors = _as_vectors(descriptors, self.preset)
        if len(np.unique(descriptors, axis=0)) < 2:
            raise IndexStateError(
                "the catalogue gives fewer than two distinct descriptors; "
                "add covers with visible texture or text"
            )

        top_sample = rng.permutation(len(vectors))[: _PER_CENTRE * branching]
        self.top_centres_ = _kmeans(vectors[top_sample], branching, self.seed)
        assignment = _nearest(vectors, self.top_centres_)
        children, offsets = [], [0]
        for top in range(len(self.top_centres_)):
            members = vectors[assignment == top][: _PER_CENTRE * branching]
            if len(members) == 0:
                members = self.top_centres_[top : top + 1]
            children.append(_kmeans(members, branching, self.seed + 1 + top))
            offsets.append(offsets[-1] + len(children[-1]))
        self.word_centres_ = np.concatenate(children)
        self.word_offsets_ = np.array(offsets, np.int64)
        return self

    @classmethod
    def from_arrays(cls, preset, top_centres, word_centres, word_offsets, seed=0):
        """Rebuild a fitted vocabulary from stored arrays."""
        vocabulary = cls(preset, branching=len(top_centres), seed=seed)
        vocabulary.top_centres_ = np.ascontiguousarray(top_centres, np.float32)
        vocabulary.word_centres_ = np.ascontiguousarray(word_centres, np.float32)
        vocabulary.word_offsets_ = np.ascontiguousarray(word_offsets, np.int64)
        return vocabulary

    def quantise_many(self, descriptor_sets: list[np.ndarray]) -> list[np.ndarray]:
        """Quantise many images' descriptors at once, in far less time than
        :meth:`quantise` on each when the images are many.

        The words are those :meth:`quantise` gives, but for a descriptor that lies at
        the same distance from two centres to within rounding, which the matrix
        products of a larger block may round the other way (2 descriptors in 1.4
        million on the benchmark catalogue).

        Examples
        --------
        >>> import numpy as np
        >>> from cvmatch.features import PRESETS
        >>> rng = np.random.default_rng(0)
        >>> descriptors = rng.integers(0, 256, (500, 32), dtype=np.uint8)
        >>> vocabulary = Vocabulary(PRESETS["orb"], branching=4).fit(descriptors)
        >>> parts = [descriptors[:200], descriptors[200:]]
        >>> together = vocabulary.quantise_many(parts)
        >>> [np.array_equal(w, vocabulary.quantise(p)) for w, p in zip(together, parts)]
        [True, True]
        """
        if not descriptor_sets:
            return []
        sizes = [len(descriptors) for descriptors in descriptor_sets]
        everything = np.concatenate(descriptor_sets)
        words = np.concatenate(
            [
                self.quantise(everything[start : start + _QUANTISE_BLOCK])
                for start in range(0, max(len(everything), 1), _QUANTISE_BLOCK)
            ]
        )
        return np.split(words, np.cumsum(sizes)[:-1])

    def quantise(self, descriptors: np.ndarray) -> np.ndarray:
        """Return the ``int32`` visual word of each descriptor."""
        words = np.empty(len(descriptors), np.int32)
        if len(descriptors) == 0:
            return words
        vectors = _as_vectors(descriptors, self.preset)
        top = _nearest(vectors, self.top_centres_)
        for node in np.unique(top):
            members = np.flatnonzero(top == node)
            first, last = self.word_offsets_[node], self.word_offsets_[node + 1]
            nearest = _nearest(vectors[members], self.word_centres_[first:last])
            words[members] = first + nearest
        return words
