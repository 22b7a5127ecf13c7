"""Image decoding shared by the baseline methods.

Every method reads its own images, so that decoding counts in its query time. They all
go through :func:`read_bgr`, so no method wins or loses by a faster decoder.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

# Where caches of trained weights and generated covers live: outside the repository,
# so nothing large or machine-specific is ever committed.
CACHE_DIR = Path(
    os.environ.get("CVMATCH_BENCH_CACHE", Path.home() / ".cache" / "cvmatch-bench")
)


class UnreadableImage(ValueError):
    """An image file could not be decoded."""


def read_bgr(path: str | Path) -> np.ndarray:
    """Decode an image file into an 8-bit BGR array, as OpenCV lays it out.

    Parameters
    ----------
    path : str or Path
        A JPEG, PNG or any other format that OpenCV decodes.

    Returns
    -------
    ndarray of uint8, shape (height, width, 3)

    Raises
    ------
    UnreadableImage
        When the file is missing or is not an image OpenCV can decode.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableImage(f"cannot decode {path}: missing file or unknown format")
    return image


def fit_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Scale ``image`` so that its longer side is ``long_side`` pixels.

    Shrinks with area averaging and enlarges with bicubic interpolation, the usual
    choice of each direction for keeping detail without aliasing.
    """
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    if scale == 1:
        return image
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=interpolation)
