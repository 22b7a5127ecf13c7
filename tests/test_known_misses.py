"""Photos of catalogue covers that cvmatch does not recognise yet, each marked ``xfail``
with the reason. They come from the benchmark's ten misses (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import pytest
from conftest import SHARED_DATA

import cvmatch


@pytest.fixture(scope="module")
def dvd_index():
    """An index of ten SMVS DVD covers, 091 to 100."""
    shared_data = SHARED_DATA
    if not (shared_data / "manifest.csv").is_file():
        pytest.skip(f"real data set not found at {shared_data} (set CVMATCH_DATA)")
    catalogue = [
        cvmatch.CatalogueEntry(
            book=cvmatch.Book(id=f"smvs_dvd_{number:03d}", title=f"DVD {number:03d}"),
            images=(shared_data / "covers" / "smvs_dvd" / f"{number:03d}.jpg",),
        )
        for number in range(91, 101)
    ]
    return cvmatch.CoverIndex.build(catalogue, preset="orb")


def test_other_photo_of_the_same_cover_is_recognised(dvd_index, shared_data):
    """The Droid photo of DVD 100 is recognised: the cover and the index are fine."""
    result = dvd_index.match(shared_data / "photos" / "smvs_dvd" / "Droid" / "100.jpg")
    assert result.book is not None, result.reason
    assert result.book.id == "smvs_dvd_100"


@pytest.mark.xfail(
    reason="the fit is rejected as explaining only 43 % of the cover (45 % needed): "
    "on this blurred, glared E63 photo most textured cells hold no inlier",
    raises=AssertionError,
    strict=True,
)
def test_blurred_glared_photo_is_recognised(dvd_index, shared_data):
    """The E63 photo of DVD 100 should name it.

    It gets "no catalogue cover verified": 196 correspondences pass the ratio test
    and the homography is right, but the check that rejects series siblings
    (:func:`cvmatch.verification.explained_share`) sees too few inliers across the
    cover. Lowering ``MIN_EXPLAINED_SHARE`` below 0.43 would let back covers and
    series siblings through (they score 0.18-0.43); telling blur from a different
    design needs a finer measure than inlier counts per cell.
    """
    result = dvd_index.match(shared_data / "photos" / "smvs_dvd" / "E63" / "100.jpg")
    assert result.book is not None, result.reason
    assert result.book.id == "smvs_dvd_100"
