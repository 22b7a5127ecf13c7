"""Stage 2: greyscale pixels in, keypoints and local descriptors out.

Two named presets are offered. ``rootsift`` (SIFT descriptors, L1-normalised and
square-rooted, which makes Euclidean distance behave like the Hellinger kernel) is
the more accurate; ``orb`` (binary descriptors) is faster and smaller. Keypoint
positions are kept because verification fits a homography to them. Next stage:
:mod:`cvmatch.vocabulary`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import ParameterError


@dataclass(frozen=True)
class FeaturePreset:
    """How keypoints are found and described.

    Attributes
    ----------
    name : str
        The name users give (``"orb"`` or ``"rootsift"``).
    binary : bool
        Whether descriptors are bit strings compared by Hamming distance.
    descriptor_size : int
        Bytes per stored descriptor.
    """

    name: str
    binary: bool
    descriptor_size: int

    def detector(self, n_features: int):
        """Return a fresh OpenCV detector that keeps at most ``n_features``."""
        if self.name == "orb":
            # A finer scale step than the default 1.2 finds covers seen from further
            # away; the FAST threshold is lowered so low-contrast covers still fire.
            return cv2.ORB_create(
                nfeatures=n_features, scaleFactor=1.2, nlevels=8, fastThreshold=12
            )
        return cv2.SIFT_create(nfeatures=n_features)


PRESETS = {
    "orb": FeaturePreset(name="orb", binary=True, descriptor_size=32),
    "rootsift": FeaturePreset(name="rootsift", binary=False, descriptor_size=128),
}


def get_preset(name: str) -> FeaturePreset:
    """Return the preset called ``name``; raise a clear error for unknown names."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ParameterError(
            f"unknown feature preset {name!r}; choose one of: {known}"
        ) from None


@dataclass
class Features:
    """Keypoints and descriptors of one image.

    Attributes
    ----------
    keypoints : numpy.ndarray
        ``(n, 2)`` float32 ``x, y`` positions in working-size pixels.
    descriptors : numpy.ndarray
        ``(n, descriptor_size)`` uint8. ORB stores its bit strings; ``rootsift``
        stores the plain SIFT descriptor (whole numbers 0-255), from which
        :func:`matching_descriptors` derives RootSIFT without loss.
    image_size : tuple of int
        ``(width, height)`` of the image the keypoints lie in.
    """

    keypoints: np.ndarray
    descriptors: np.ndarray
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.keypoints)


def extract_features(pixels: np.ndarray, preset: FeaturePreset, n_features: int):
    """Find keypoints in a greyscale image and describe them.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``uint8`` greyscale image.
    preset : FeaturePreset
        Which detector and descriptor to use.
    n_features : int
        The strongest this many keypoints are kept.

    Returns
    -------
    Features
        Possibly empty: a blank image has no keypoints.

    Examples
    --------
    >>> import numpy as np
    >>> from cvmatch.features import PRESETS, extract_features
    >>> blank = np.full((300, 200), 128, np.uint8)
    >>> len(extract_features(blank, PRESETS["orb"], 500))
    0
    """
    keypoints, descriptors = preset.detector(n_features).detectAndCompute(pixels, None)
    height, width = pixels.shape[:2]
    if descriptors is None or not keypoints:
        return Features(
            keypoints=np.empty((0, 2), np.float32),
            descriptors=np.empty((0, preset.descriptor_size), np.uint8),
            image_size=(width, height),
        )
    positions = np.array([keypoint.pt for keypoint in keypoints], np.float32)
    if not preset.binary:
        # OpenCV's SIFT descriptors are whole numbers below 256 held as floats.
        descriptors = np.clip(np.rint(descriptors), 0, 255).astype(np.uint8)
    return Features(
        keypoints=positions, descriptors=descriptors, image_size=(width, height)
    )


def matching_descriptors(descriptors: np.ndarray, preset: FeaturePreset):
    """Return descriptors in the form that distances are computed on.

    ORB bit strings are returned as they are (compared by Hamming distance); SIFT
    descriptors become RootSIFT float32 vectors (compared by Euclidean distance).
    """
    if preset.binary:
        return descriptors
    values = descriptors.astype(np.float32)
    total = values.sum(axis=1, keepdims=True)
    return np.sqrt(values / np.maximum(total, 1e-7))
