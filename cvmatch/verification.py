"""Stage 5: a photo and one candidate cover in, verified correspondences out.

Descriptors of the photo are matched to those of the cover with Lowe's ratio test, and
a homography (the perspective mapping of a flat cover into the photo) is fitted to the
matches with RANSAC. Fits that no real photo of a flat cover could give are rejected:
an outline that is not convex, a tiny outline, extreme stretching, inliers bunched in
one small patch, or a cover whose inliers explain only part of the photo's texture where
the cover lies (see :func:`explained_share`). Next stage: :mod:`cvmatch.matcher`, which
ranks candidates by inliers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import tuning
from .features import FeaturePreset


@dataclass(frozen=True)
class Verification:
    """Outcome of checking one candidate cover against a photo.

    Attributes
    ----------
    inliers : int
        Correspondences consistent with the homography; 0 when rejected.
    matches : int
        Correspondences that passed the ratio test.
    corners : numpy.ndarray or None
        ``(4, 2)`` float32 corners of the cover in the photo's working pixels
        (top-left, top-right, bottom-right, bottom-left), or None when rejected.
    reason : str
        Why the candidate was rejected, empty when it was not.
    """

    inliers: int
    matches: int
    corners: np.ndarray | None
    reason: str = ""


def unique_words(words: np.ndarray):
    """Return the words that occur exactly once, and the keypoint holding each."""
    values, first, counts = np.unique(words, return_index=True, return_counts=True)
    once = counts == 1
    return values[once], first[once]


def word_inliers(photo_keypoints, photo_unique, cover_keypoints, cover_unique) -> int:
    """Count inliers of a homography fitted to shared visual words; a cheap pre-check.

    Two keypoints with the same visual word form a tentative correspondence. Only
    words that occur once in each image are used (from :func:`unique_words`): repeated
    texture and the letters of a title would otherwise pair every occurrence with
    every other. The count ranks shortlisted covers so that only the most promising
    go through the full, ratio-tested :func:`verify`.
    """
    photo_words, photo_positions = photo_unique
    cover_words, cover_positions = cover_unique
    _, in_photo, in_cover = np.intersect1d(
        photo_words, cover_words, assume_unique=True, return_indices=True
    )
    if len(in_photo) < 4:
        return 0
    _, mask = cv2.findHomography(
        cover_keypoints[cover_positions[in_cover]],
        photo_keypoints[photo_positions[in_photo]],
        cv2.USAC_MAGSAC,
        tuning.RANSAC_REPROJECTION_ERROR,
        maxIters=tuning.RANSAC_MAX_ITERATIONS,
        confidence=tuning.RANSAC_CONFIDENCE,
    )
    return 0 if mask is None else int(mask.sum())


def _matcher(preset: FeaturePreset):
    norm = cv2.NORM_HAMMING if preset.binary else cv2.NORM_L2
    return cv2.BFMatcher(norm, crossCheck=False)


def ratio_matches(photo_descriptors, cover_descriptors, preset: FeaturePreset):
    """Return ``(photo_indices, cover_indices)`` of matches passing the ratio test."""
    if len(photo_descriptors) < 2 or len(cover_descriptors) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pairs = _matcher(preset).knnMatch(photo_descriptors, cover_descriptors, k=2)
    photo_indices, cover_indices = [], []
    for pair in pairs:
        if len(pair) == 2 and pair[0].distance < tuning.RATIO_TEST * pair[1].distance:
            photo_indices.append(pair[0].queryIdx)
            cover_indices.append(pair[0].trainIdx)
    return np.array(photo_indices, np.int64), np.array(cover_indices, np.int64)


def _is_convex(quad: np.ndarray) -> bool:
    edges = np.roll(quad, -1, axis=0) - quad
    following = np.roll(edges, -1, axis=0)
    turns = edges[:, 0] * following[:, 1] - edges[:, 1] * following[:, 0]
    return bool(np.all(turns > 0) or np.all(turns < 0))


def _outline_problem(quad, photo_size) -> str:
    if not np.all(np.isfinite(quad)):
        return "degenerate homography"
    if not _is_convex(quad):
        return "outline not convex"
    area = cv2.contourArea(quad.astype(np.float32))
    if area < tuning.MIN_COVER_AREA * photo_size[0] * photo_size[1]:
        return "outline too small"
    sides = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)
    for first, second in ((sides[0], sides[2]), (sides[1], sides[3])):
        if max(first, second) > tuning.MAX_SIDE_RATIO * max(min(first, second), 1e-6):
            return "outline too stretched"
    return ""


def verify(photo, photo_descriptors, cover, cover_descriptors, preset, min_inliers):
    """Check geometrically whether a candidate cover appears in a photo.

    Parameters
    ----------
    photo, cover : cvmatch.features.Features
        Keypoints (and image sizes) of the photo and of the candidate cover.
    photo_descriptors, cover_descriptors : numpy.ndarray
        Their descriptors as returned by
        :func:`cvmatch.features.matching_descriptors`.
    preset : cvmatch.features.FeaturePreset
    min_inliers : int
        Fewer ratio-test matches than this are not worth a RANSAC fit.

    Returns
    -------
    Verification
    """
    photo_indices, cover_indices = ratio_matches(
        photo_descriptors, cover_descriptors, preset
    )
    matches = len(photo_indices)
    if matches < max(min_inliers, 4):
        return Verification(0, matches, None, "too few matches")

    cover_points = cover.keypoints[cover_indices]
    photo_points = photo.keypoints[photo_indices]
    homography, mask = cv2.findHomography(
        cover_points,
        photo_points,
        cv2.USAC_MAGSAC,
        tuning.RANSAC_REPROJECTION_ERROR,
        maxIters=tuning.RANSAC_MAX_ITERATIONS,
        confidence=tuning.RANSAC_CONFIDENCE,
    )
    if homography is None:
        return Verification(0, matches, None, "no homography")
    inlier_mask = mask.ravel().astype(bool)
    inliers = int(inlier_mask.sum())

    width, height = cover.image_size
    outline = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    quad = cv2.perspectiveTransform(outline[np.newaxis], homography)[0]
    problem = _outline_problem(quad, photo.image_size)
    if not problem and inliers >= 3:
        hull = cv2.convexHull(cover_points[inlier_mask].astype(np.float32))
        if cv2.contourArea(hull) < tuning.MIN_INLIER_SPREAD * width * height:
            problem = "inliers bunched together"
    if not problem:
        share = explained_share(
            photo.keypoints, cover, homography, cover_points[inlier_mask]
        )
        if share < tuning.MIN_EXPLAINED_SHARE:
            problem = f"fits only part of the cover (explains {share:.0%})"
    if problem:
        return Verification(0, matches, None, problem)
    return Verification(inliers, matches, quad, "")


def explained_share(photo_keypoints, cover, homography, inlier_points) -> float:
    """Share of the cover's regions, where the photo shows texture, that hold inliers.

    Covers of one series share a band (a banner, the author's name in the same
    lettering), and a photo of one fits another with a hundred inliers, all in
    that band. What gives the wrong cover away is the rest of it: where its own
    pattern lies in the photo, the photo is full of keypoints, and none of them
    agrees with the cover. The cover is cut into a grid of cells and the photo's
    keypoints are mapped into it. A cell *agrees* when it holds an inlier; it
    *contradicts* when it holds none although both the cover and the photo have
    texture there. Cells where the photo shows little (glare, blur, the cover
    outside the frame) say nothing either way, so a true cover half washed out by
    glare is not penalised.

    What it misses: cells that the homography puts outside the photo say nothing
    either, so a band of a cover seen alone (its title on a spine in a shelf of
    books) can pass when the rest of the cover falls beyond the picture. Counting
    such cells against the fit would also refuse real photos in which the cover is
    half out of the frame; ``test_bookshelf_of_catalogue_spines_gets_no_title``
    shows the case.

    Parameters
    ----------
    photo_keypoints : numpy.ndarray
        ``(n, 2)`` keypoint positions of the photo.
    cover : cvmatch.features.Features
        The candidate cover.
    homography : numpy.ndarray
        ``3x3``, cover pixels to photo pixels.
    inlier_points : numpy.ndarray
        ``(k, 2)`` cover positions of the inliers.

    Returns
    -------
    float
        ``agreeing / (agreeing + contradicting)``, 1.0 when no cell contradicts.
    """
    width, height = cover.image_size
    grid = tuning.EXPLAINED_GRID

    def cell_counts(points):
        columns = np.clip((points[:, 0] * (grid / width)).astype(int), 0, grid - 1)
        rows = np.clip((points[:, 1] * (grid / height)).astype(int), 0, grid - 1)
        return np.bincount(rows * grid + columns, minlength=grid * grid)

    on_cover = cv2.perspectiveTransform(
        photo_keypoints[np.newaxis].astype(np.float32), np.linalg.inv(homography)
    )[0]
    within = (
        (on_cover[:, 0] >= 0)
        & (on_cover[:, 0] < width)
        & (on_cover[:, 1] >= 0)
        & (on_cover[:, 1] < height)
    )
    photo_texture = cell_counts(on_cover[within])
    cover_texture = cell_counts(cover.keypoints)
    agreeing = cell_counts(inlier_points) > 0
    contradicting = (
        ~agreeing
        & (cover_texture >= tuning.EXPLAINED_MIN_COVER_KEYPOINTS)
        & (photo_texture >= tuning.EXPLAINED_MIN_PHOTO_KEYPOINTS)
    )
    total = int(agreeing.sum() + contradicting.sum())
    return 1.0 if total == 0 else float(agreeing.sum()) / total
