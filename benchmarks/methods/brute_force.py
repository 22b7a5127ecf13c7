"""Brute-force local feature matching: the photo against every cover, one by one.

Each cover is matched with the ratio test and verified with a RANSAC homography
(OpenCV's USAC variant, whose early exit makes hopeless covers cheap); the
cover with the most inliers wins. No index, no vocabulary: this is the accuracy that
local features reach when cost is no object, and its query time grows linearly with
the catalogue. Two feature kinds are offered, ORB (binary, Hamming distance) and
RootSIFT (SIFT descriptors L1-normalised then square-rooted, compared with the
Euclidean distance, which then approximates the Hellinger kernel).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from benchmarks.methods.images import fit_long_side, read_bgr
from benchmarks.protocol import Entry

# Covers are brought to one size so that feature counts do not depend on the file:
# catalogue thumbnails of 180 px would yield a few dozen keypoints, scans of 2000 px
# thousands. 640 px keeps the title lettering of a thumbnail detectable once enlarged.
COVER_LONG_SIDE = 640

# A phone photo is shrunk to this size before detection. The cover fills a third to
# all of the frame, so at 1024 px it still spans 340 px or more, near the cover scale.
PHOTO_LONG_SIDE = 1024

# Keypoints kept per cover and per photo. The photo gets more because part of it is
# background. Matching cost is the product of the two, paid once per cover, so these
# are as low as keeps the true cover's inliers well above chance (a few dozen).
COVER_FEATURES = 500
PHOTO_FEATURES = 1500

# Lowe's ratio test: a match is kept when its nearest cover descriptor is clearly
# nearer than the second. 0.75 sits between Lowe's 0.8 for SIFT and the tighter values
# binary descriptors need.
RATIO = 0.75

# RANSAC reprojection error, in photo pixels at PHOTO_LONG_SIDE: a few pixels absorb
# the curl of a paperback and keypoint localisation error at coarse pyramid levels.
RANSAC_REPROJECTION_ERROR = 5.0

# Fewer ratio-test matches than this carry no evidence worth a RANSAC run; a
# homography needs four, and a handful of chance matches fit one easily.
MIN_MATCHES = 8

# How many covers a query returns, best first.
RANKING_DEPTH = 10


class _Features:
    """Detection and description for one feature kind, with its matching norm."""

    def __init__(self, kind: str):
        if kind not in ("orb", "rootsift"):
            raise ValueError(f"unknown feature kind {kind!r}; use 'orb' or 'rootsift'")
        self.kind = kind
        self.norm = cv2.NORM_HAMMING if kind == "orb" else cv2.NORM_L2

    def detect(self, image: np.ndarray, n_features: int):
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.kind == "orb":
            detector = cv2.ORB_create(nfeatures=n_features)
        else:
            detector = cv2.SIFT_create(nfeatures=n_features)
        keypoints, descriptors = detector.detectAndCompute(gray, None)
        if descriptors is None or len(keypoints) == 0:
            return np.empty((0, 2), np.float32), None
        if self.kind == "rootsift":
            descriptors = descriptors / (descriptors.sum(axis=1, keepdims=True) + 1e-7)
            descriptors = np.sqrt(descriptors).astype(np.float32)
        points = np.float32([keypoint.pt for keypoint in keypoints])
        return points, descriptors


def count_inliers(
    matcher: cv2.DescriptorMatcher,
    photo_points: np.ndarray,
    photo_descriptors: np.ndarray,
    cover_points: np.ndarray,
    cover_descriptors: np.ndarray | None,
) -> tuple[int, int]:
    """Ratio-test match a photo to one cover and count RANSAC homography inliers.

    Returns
    -------
    inliers, matches : int
        Inliers of the best homography (0 when none was tried) and the number of
        ratio-test matches, which breaks ties between covers with equal inliers.
    """
    if cover_descriptors is None or len(cover_descriptors) < 2:
        return 0, 0
    pairs = matcher.knnMatch(photo_descriptors, cover_descriptors, k=2)
    good = [
        pair[0]
        for pair in pairs
        if len(pair) == 2 and pair[0].distance < RATIO * pair[1].distance
    ]
    if len(good) < MIN_MATCHES:
        return 0, len(good)
    source = cover_points[[match.trainIdx for match in good]]
    target = photo_points[[match.queryIdx for match in good]]
    homography, mask = cv2.findHomography(
        source, target, cv2.USAC_DEFAULT, RANSAC_REPROJECTION_ERROR
    )
    if homography is None:
        return 0, len(good)
    return int(mask.sum()), len(good)


class BruteForceMethod:
    """Match a photo against every cover with local features and RANSAC.

    Parameters
    ----------
    features : {"orb", "rootsift"}
        The local feature kind.

    Examples
    --------
    >>> method = BruteForceMethod("orb")  # doctest: +SKIP
    >>> method.build(catalogue)  # doctest: +SKIP
    >>> method.query(photo_path)[0]  # doctest: +SKIP
    ('smvs_dvd_001', 212.0)
    """

    def __init__(self, features: str = "orb"):
        self.features = _Features(features)
        self.name = f"brute force {'ORB' if features == 'orb' else 'RootSIFT'}"
        self.notes = (
            f"{COVER_FEATURES} keypoints per cover at {COVER_LONG_SIDE} px, "
            f"{PHOTO_FEATURES} per photo at {PHOTO_LONG_SIDE} px; score = inliers."
        )

    def build(self, covers: list[Entry]) -> None:
        self.object_ids_ = []
        self.cover_points_ = []
        self.cover_descriptors_ = []
        for cover in covers:
            image = fit_long_side(read_bgr(cover.path), COVER_LONG_SIDE)
            points, descriptors = self.features.detect(image, COVER_FEATURES)
            self.object_ids_.append(cover.object_id)
            self.cover_points_.append(points)
            self.cover_descriptors_.append(descriptors)

    def query(self, path: Path) -> list[tuple[str, float]]:
        photo = fit_long_side(read_bgr(path), PHOTO_LONG_SIDE)
        photo_points, photo_descriptors = self.features.detect(photo, PHOTO_FEATURES)
        if photo_descriptors is None or len(photo_descriptors) < 2:
            return []

        matcher = cv2.BFMatcher(self.features.norm)
        evidence = []
        for object_id, cover_points, cover_descriptors in zip(
            self.object_ids_, self.cover_points_, self.cover_descriptors_, strict=True
        ):
            inliers, matches = count_inliers(
                matcher,
                photo_points,
                photo_descriptors,
                cover_points,
                cover_descriptors,
            )
            evidence.append((inliers, matches, object_id))
        evidence.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [(object_id, float(inliers)) for inliers, _, object_id in evidence][
            :RANKING_DEPTH
        ]

    def size_on_disk(self) -> int:
        """Bytes of the keypoint positions and descriptors, stored uncompressed."""
        return sum(
            points.nbytes + (0 if descriptors is None else descriptors.nbytes)
            for points, descriptors in zip(
                self.cover_points_, self.cover_descriptors_, strict=True
            )
        )
