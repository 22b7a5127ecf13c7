"""Pictures of what is not in the catalogue get no title: every unknown-book photo and
every distractor of the real data set, and a bookshelf seen by its spines.

The images are listed by ``manifest.csv`` of the real data set; without it these tests
are skipped.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import SAMPLE_COVERS, SHARED_DATA
from PIL import Image

import cvmatch


def _manifest_rows() -> list[dict]:
    manifest = SHARED_DATA / "manifest.csv"
    if not manifest.is_file():
        return []
    with manifest.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


MANIFEST = _manifest_rows()

#: Flat scans of title pages, back covers and a full wrap, whose own books' front
#: covers are in the data set: they are checked against an index of those fronts.
SCANNED_PAGES = [
    row["path"]
    for row in MANIFEST
    if row["role"] == "distractor" and row["source"] == "scans"
]

#: Camera photos of books in no catalogue, and pictures that are not books (a face, a
#: coffee cup on a wooden table, coins, a cat, text, the sky...).
OUTSIDE_THE_SAMPLES = [
    row["path"]
    for row in MANIFEST
    if row["role"] == "photo_unknown"
    or (row["role"] == "distractor" and row["path"] not in SCANNED_PAGES)
]

#: A flat scan of a whole wrap (back, spine and front side by side): it contains the
#: front cover pixel for pixel, so naming that book is the right answer.
FULL_WRAP = "distractors/scans/Clueless_in_cleaveland.jpg"


def _name(relative: str) -> str:
    return relative.rsplit("/", 1)[1]


def _or_skipped(paths: list[str]) -> list:
    """``paths``, or one skipped case that says where the data set was looked for
    (an empty list would be skipped with pytest's "got empty parameter set")."""
    reason = f"real data set not found at {SHARED_DATA} (set CVMATCH_DATA)"
    return paths or [pytest.param("", marks=pytest.mark.skip(reason=reason), id="none")]


@pytest.fixture(scope="module")
def front_covers_index():
    """An index of the front covers of the scanned books (title pages and back covers
    of the same books are the distractors)."""
    images: dict[str, list[Path]] = {}
    books = {}
    for row in MANIFEST:
        if row["role"] == "cover" and row["source"] == "scans":
            books[row["object_id"]] = cvmatch.Book(
                id=row["object_id"], title=row["title"], author=row["author"]
            )
            images.setdefault(row["object_id"], []).append(SHARED_DATA / row["path"])
    if not books:
        pytest.skip(f"real data set not found at {SHARED_DATA} (set CVMATCH_DATA)")
    catalogue = [
        cvmatch.CatalogueEntry(book=book, images=tuple(images[book_id]))
        for book_id, book in books.items()
    ]
    return cvmatch.CoverIndex.build(catalogue, preset="orb")


@pytest.mark.parametrize("relative", _or_skipped(OUTSIDE_THE_SAMPLES), ids=_name)
def test_unknown_book_or_non_book_picture_gets_no_title(
    relative, sample_index, shared_data
):
    """Every ``photo_unknown`` and every non-scan ``distractor`` of the data set gets
    no title from the sample index, and a reason."""
    result = sample_index.match(shared_data / relative)
    assert result.book is None, f"false title: {result.book.title}"
    assert result.reason


@pytest.mark.parametrize(
    "relative",
    _or_skipped([path for path in SCANNED_PAGES if path != FULL_WRAP]),
    ids=_name,
)
def test_title_page_or_back_cover_gets_no_title(
    relative, front_covers_index, shared_data
):
    """A scanned title page or back cover gets no title even when the front cover of
    its own book is in the index (it repeats the title, the author, the lettering)."""
    result = front_covers_index.match(shared_data / relative)
    assert result.book is None, f"false title: {result.book.title}"
    assert result.reason


def test_scan_of_a_whole_wrap_names_the_book_whose_front_it_holds(
    front_covers_index, shared_data
):
    """A scan of back, spine and front side by side holds the whole front cover: it is
    a picture of that book, and cvmatch names it, placing it on the right-hand third.
    (The catalogue image has wide white margins, so only the outline's centre is
    checked.)"""
    result = front_covers_index.match(shared_data / FULL_WRAP)
    assert result.book is not None, result.reason
    assert result.book.title == "Clueless in Cleveland"
    centre_x = sum(x for x, _ in result.corners) / 4
    with Image.open(shared_data / FULL_WRAP) as wrap:
        assert centre_x > 2 / 3 * wrap.width, "the outline should centre on the front"


def _bookshelf(covers, path):
    """A shelf of books seen by their spines: from each cover, the band across its
    upper part where the title stands, turned so that the title runs up the spine,
    side by side on a brown shelf."""
    spines = []
    for cover_path in covers:
        with Image.open(cover_path) as cover:
            cover = cover.convert("RGB").resize((300, 450), Image.Resampling.BICUBIC)
        band = cover.crop((0, 90, 300, 165))
        spines.append(band.transpose(Image.Transpose.ROTATE_90))
    gap = 8
    width = sum(spine.width for spine in spines) + gap * (len(spines) + 1)
    shelf = Image.new("RGB", (width, 420), (92, 60, 38))
    left = gap
    for spine in spines:
        shelf.paste(spine, (left, 60))
        left += spine.width + gap
    shelf.save(path)


def test_cli_gives_no_title_for_a_face_a_table_and_a_bookshelf(
    sample_index_file, cli, shared_data, tmp_path
):
    """``cvmatch match`` on a portrait, a coffee cup on a wooden table and a shelf of
    fourteen book spines (books not in the catalogue) prints "no match" with a reason
    for each and exits 1."""
    romance = [
        shared_data / row["path"] for row in MANIFEST if row["source"] == "romance"
    ]
    shelf = tmp_path / "bookshelf.png"
    _bookshelf(romance[:14], shelf)
    photos = [
        shared_data / "distractors/skimage/astronaut.png",
        shared_data / "distractors/skimage/coffee.png",
        shelf,
    ]

    result = cli("match", sample_index_file, *photos)

    assert result.exit_code == 1, result.output
    assert result.stderr == ""
    for photo in photos:
        assert f"{photo}: no match (" in result.stdout


@pytest.mark.xfail(
    reason="a fit to one band of a cover passes verification when the rest of the "
    "cover lies beyond the picture; see the docstring",
    raises=AssertionError,
    strict=True,
)
def test_bookshelf_of_catalogue_spines_gets_no_title(sample_index, tmp_path):
    """A shelf whose spines are title bands of fourteen catalogue covers gets no title.

    It gets "Still Life With Crows" (36 inliers, confidence 0.59). The homography fits
    the band of that cover's title on its spine: the inliers span 2.5 % of the cover's
    area, just over ``MIN_INLIER_SPREAD`` (2 %), and the rest of the cover, which the
    homography puts mostly beyond the picture, holds too few photo keypoints for the
    grid check of :func:`cvmatch.verification.explained_share` to contradict the fit
    (it explains 50 % of the cells; 45 % is needed). A fit to one band of a cover
    would need to be refused outright, as the grid check already does for a band
    that the photo shows with the rest of the cover around it.
    """
    shelf = tmp_path / "bookshelf.png"
    _bookshelf(sorted((SAMPLE_COVERS / "covers").glob("*.png"))[:14], shelf)

    result = sample_index.match(shelf)
    assert result.book is None, f"false title: {result.book.title}"
