"""Stage 4: visual words in, a short list of candidate covers out.

Each cover is a bag of visual words weighted by TF-IDF: a word's weight in a cover
grows with how often it occurs there and shrinks with how many covers contain it, so
words common to every cover (plain backgrounds, the texture of print) count for little.
The term frequency enters as its square root: repeated texture (a row of identical
letters, a patterned background) makes one word occur dozens of times, and raw counts
let such bursts outweigh the many words that occur once. Cover vectors are
L2-normalised and a photo is scored against them by cosine similarity.

The postings are held word by word (a sparse matrix with one column per word), so a
query reads only the postings of the words that occur in the photo: its cost grows with
the lengths of those postings, not with the number of covers times their descriptors.
Next stage: :mod:`cvmatch.verification`.
"""

from __future__ import annotations

import threading

import numpy as np
from scipy import sparse


def _bag(words: np.ndarray, n_words: int) -> np.ndarray:
    return np.bincount(words, minlength=n_words).astype(np.float32)


class InvertedIndex:
    """TF-IDF postings of visual words, one document per catalogue cover.

    Documents are numbered in the order they are added; :meth:`remove` renumbers the
    ones after it, as deleting from a list does. :meth:`scores` may be called from
    several threads at once; :meth:`add` and :meth:`remove` may not run alongside it.

    Parameters
    ----------
    n_words : int
        Size of the vocabulary.

    Examples
    --------
    >>> import numpy as np
    >>> from cvmatch.inverted_index import InvertedIndex
    >>> index = InvertedIndex(n_words=6)
    >>> index.add(np.array([0, 1, 1, 2])); index.add(np.array([3, 4, 5]))
    >>> scores = index.scores(np.array([3, 4]))
    >>> int(scores.argmax())
    1
    """

    def __init__(self, n_words: int):
        self.n_words = n_words
        self._counts = sparse.csr_matrix((0, n_words), dtype=np.float32)
        self._pending: list[np.ndarray] = []
        self._weights = None  # (postings, idf), built on first use after a change
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._counts.shape[0] + len(self._pending)

    def add(self, words: np.ndarray) -> None:
        """Add one cover, given the visual word of each of its descriptors."""
        self._pending.append(np.asarray(words, dtype=np.int64))
        self._weights = None

    def remove(self, position: int) -> None:
        """Remove the cover at ``position``; later covers move down by one."""
        counts = self.counts()
        keep = np.ones(counts.shape[0], bool)
        keep[position] = False
        self._counts = counts[keep]
        self._weights = None

    def counts(self) -> sparse.csr_matrix:
        """Return the ``(covers, words)`` matrix of raw word counts."""
        if self._pending:
            rows = [
                sparse.csr_matrix(_bag(words, self.n_words)) for words in self._pending
            ]
            self._counts = sparse.vstack([self._counts, *rows], format="csr")
            self._pending = []
        return self._counts

    @classmethod
    def from_counts(cls, counts: sparse.csr_matrix):
        """Rebuild an index from a stored count matrix."""
        index = cls(counts.shape[1])
        index._counts = sparse.csr_matrix(counts, dtype=np.float32)
        return index

    def _prepare(self):
        with self._lock:
            if self._weights is not None:
                return self._weights
            counts = self.counts()
            n_covers = counts.shape[0]
            covers_with_word = np.bincount(counts.indices, minlength=self.n_words)
            # A word in no cover gets weight 0: it cannot tell covers apart.
            idf = np.where(
                covers_with_word > 0,
                np.log((n_covers + 1) / np.maximum(covers_with_word, 1)),
                0.0,
            ).astype(np.float32)
            weighted = sparse.csr_matrix(counts.sqrt().multiply(idf[np.newaxis, :]))
            norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
            weighted = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted
            self._weights = (sparse.csc_matrix(weighted, dtype=np.float32), idf)
            return self._weights

    def scores(self, words: np.ndarray) -> np.ndarray:
        """Cosine similarity between a photo's bag of words and every cover.

        Returns
        -------
        numpy.ndarray
            One finite float32 score per cover, between 0 and 1.
        """
        postings, idf = self._weights or self._prepare()
        n_covers = postings.shape[0]
        if n_covers == 0 or len(words) == 0:
            return np.zeros(n_covers, np.float32)
        present, repeats = np.unique(words, return_counts=True)
        query = np.sqrt(repeats.astype(np.float32)) * idf[present]
        norm = float(np.linalg.norm(query))
        if norm == 0.0:
            return np.zeros(n_covers, np.float32)
        columns = postings[:, present]
        return np.asarray(columns @ (query / norm)).ravel().astype(np.float32)
