"""The recognition pipeline end to end on real covers and real phone photos."""

from __future__ import annotations

import math
import textwrap

import cv2
import numpy as np
import pytest
from conftest import QUERY_BOOKS, REPO_ROOT, SAMPLE_CATALOGUE, SAMPLE_PHOTOS
from PIL import Image

import cvmatch
from cvmatch import tuning
from cvmatch.features import PRESETS, extract_features
from cvmatch.images import load_image
from cvmatch.vocabulary import Vocabulary


@pytest.mark.parametrize("stem", sorted(QUERY_BOOKS), ids=sorted(QUERY_BOOKS))
def test_every_sample_photo_names_its_book(sample_index, stem):
    """Each bundled phone photo is recognised as the book it shows, with its link."""
    book_id, title = QUERY_BOOKS[stem]
    result = sample_index.match(SAMPLE_PHOTOS / f"{stem}.png", top=3)
    assert result.matched, result.reason
    assert (result.book.id, result.book.title) == (book_id, title)
    assert result.goodreads_url.startswith("https://www.goodreads.com/book/show/")
    assert result.inliers >= tuning.MIN_INLIERS
    assert 0.3 <= result.confidence <= 1.0
    assert all(candidate.book.id != book_id for candidate in result.runners_up)


def test_rootsift_preset_recognises_sample_photos(sample_catalogue):
    """The RootSIFT preset names the right book too (on a part of the catalogue)."""
    wanted = {QUERY_BOOKS[stem][0] for stem in ("query02", "query03", "query04")}
    catalogue = [entry for entry in sample_catalogue if entry.book.id in wanted] + [
        entry for entry in sample_catalogue[20:30]
    ]
    index = cvmatch.CoverIndex.build(catalogue, preset="rootsift", branching=32)
    for stem in ("query02", "query03", "query04"):
        result = index.match(SAMPLE_PHOTOS / f"{stem}.png")
        assert result.matched and result.book.id == QUERY_BOOKS[stem][0], stem


def test_public_load_image_defaults_to_the_size_photos_are_matched_at():
    """``cvmatch.load_image(path)`` needs no size: it shrinks to the matching size."""
    photo = cv2.resize(cv2.imread(str(SAMPLE_PHOTOS / "query03.png")), (1600, 2132))
    content = cv2.imencode(".png", photo)[1].tobytes()

    loaded = cvmatch.load_image(content)

    assert loaded.original_size == (1600, 2132)
    assert max(loaded.pixels.shape) == tuning.PHOTO_MAX_SIDE


def test_corners_outline_the_cover_inside_the_photo(sample_index):
    """The recognised cover's four corners lie in the photo, in original pixels."""
    photo = SAMPLE_PHOTOS / "query03.png"
    result = sample_index.match(photo)
    width, height = load_image(photo, max_side=10_000).original_size
    corners = np.array(result.corners)
    assert corners.shape == (4, 2)
    # The photo shows the whole cover with a margin, so the corners are near the
    # image but not all on its border, and the outline covers a good part of it.
    assert np.all(corners > -0.1 * width) and np.all(corners < 1.1 * max(width, height))
    area = 0.5 * abs(
        np.dot(corners[:, 0], np.roll(corners[:, 1], 1))
        - np.dot(corners[:, 1], np.roll(corners[:, 0], 1))
    )
    assert 0.2 * width * height < area < 1.2 * width * height


@pytest.mark.parametrize(
    "relative",
    [
        "photos/not_in_catalogue/hp.jpeg",
        "photos/not_in_catalogue/scar.jpeg",
        "distractors/skimage/astronaut.png",
        "distractors/skimage/text.png",
    ],
    ids=["unknown-book-hp", "unknown-book-scar", "astronaut", "text"],
)
def test_photos_of_other_things_get_no_title(sample_index, shared_data, relative):
    """A book that is not in the catalogue, or no book at all, gets no title."""
    result = sample_index.match(shared_data / relative)
    assert not result.matched
    assert result.book is None and result.reason


def test_save_and_load_keep_every_answer(sample_index, tmp_path):
    """A saved and reloaded index answers every sample photo exactly as before."""
    path = tmp_path / "sample.cvmatch"
    cvmatch.save_index(sample_index, path)
    loaded = cvmatch.load_index(path)
    assert loaded.preset.name == sample_index.preset.name
    assert len(loaded.covers) == len(sample_index.covers)
    for stem in QUERY_BOOKS:
        before = sample_index.match(SAMPLE_PHOTOS / f"{stem}.png").to_dict()
        after = loaded.match(SAMPLE_PHOTOS / f"{stem}.png").to_dict()
        assert after == before


def test_add_then_remove_restores_the_answers(sample_catalogue, tmp_path):
    """Books added to a built index are found; removing them restores the old index."""
    first, rest = sample_catalogue[:25], sample_catalogue[25:]
    index = cvmatch.CoverIndex.build(first, preset="orb", branching=32)
    centres = index.vocabulary.word_centres_.copy()
    photo = SAMPLE_PHOTOS / "query03.png"  # Jurassic Park, cover003, in `first`
    before = index.match(photo).to_dict()

    index.add(rest)
    assert np.array_equal(index.vocabulary.word_centres_, centres)
    assert len(index.books) == 50
    for entry in rest:
        index.remove(entry.book.id)
    assert index.match(photo).to_dict() == before

    index.remove("cover003")
    assert index.match(photo).book is None or index.match(photo).book.id != "cover003"
    index.add([entry for entry in sample_catalogue if entry.book.id == "cover003"])
    assert index.match(photo).book.id == "cover003"


def _verify_photo_against(cover_file, stem="query03"):
    from cvmatch.verification import verify

    preset = PRESETS["orb"]
    photo = load_image(SAMPLE_PHOTOS / f"{stem}.png", tuning.PHOTO_MAX_SIDE)
    photo_features = extract_features(photo.pixels, preset, tuning.PHOTO_FEATURES)
    cover = load_image(
        SAMPLE_CATALOGUE.parent / "covers" / cover_file,
        tuning.COVER_MAX_SIDE,
        min_side=tuning.COVER_MIN_SIDE,
    )
    cover_features = extract_features(cover.pixels, preset, tuning.COVER_FEATURES)
    return verify(
        photo_features,
        photo_features.descriptors,
        cover_features,
        cover_features.descriptors,
        preset,
        tuning.MIN_INLIERS,
    )


def test_a_sibling_cover_of_the_same_series_is_not_a_fit():
    """Jurassic Park's photo shares Michael Crichton's banner with Timeline's cover,
    which gives a geometrically consistent fit of about a hundred inliers in that
    band; the rest of Timeline explains none of the photo, so the fit is rejected."""
    sibling = _verify_photo_against("cover005.png")
    assert sibling.inliers == 0
    assert sibling.reason.startswith("fits only part of the cover")

    own = _verify_photo_against("cover003.png")
    assert own.inliers > 100 and own.reason == ""


def test_adding_an_existing_id_is_refused(sample_catalogue):
    """Adding a book whose id is already indexed raises a clear error."""
    index = cvmatch.CoverIndex.build(sample_catalogue[:5], preset="orb", branching=8)
    with pytest.raises(cvmatch.IndexStateError, match="already in the index"):
        index.add(sample_catalogue[:1])
    with pytest.raises(cvmatch.IndexStateError, match="no book with id"):
        index.remove("no-such-book")


def test_same_catalogue_and_seed_give_the_same_vocabulary(sample_catalogue):
    """Building twice with one seed gives identical visual words; another seed not."""
    catalogue = sample_catalogue[:8]
    first = cvmatch.CoverIndex.build(catalogue, preset="orb", branching=8, seed=3)
    second = cvmatch.CoverIndex.build(catalogue, preset="orb", branching=8, seed=3)
    other = cvmatch.CoverIndex.build(catalogue, preset="orb", branching=8, seed=4)
    assert np.array_equal(
        first.vocabulary.word_centres_, second.vocabulary.word_centres_
    )
    assert not np.array_equal(
        first.vocabulary.word_centres_, other.vocabulary.word_centres_
    )


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_vocabulary_quantises_a_descriptor_to_its_own_word(preset):
    """A catalogue descriptor lands on the word whose centre is nearest to it."""
    cover = load_image(SAMPLE_CATALOGUE.parent / "covers/cover029.png", 800)
    features = extract_features(cover.pixels, PRESETS[preset], 500)
    vocabulary = Vocabulary(PRESETS[preset], branching=8, seed=0).fit(
        features.descriptors
    )
    words = vocabulary.quantise(features.descriptors)
    assert words.min() >= 0 and words.max() < vocabulary.n_words
    assert len(np.unique(words)) > vocabulary.n_words // 2


def test_rootsift_descriptors_are_unit_length_in_l2():
    """RootSIFT vectors have L2 norm 1, because their squares sum to the L1 norm 1."""
    from cvmatch.features import matching_descriptors

    cover = load_image(SAMPLE_CATALOGUE.parent / "covers/cover029.png", 800)
    features = extract_features(cover.pixels, PRESETS["rootsift"], 200)
    vectors = matching_descriptors(features.descriptors, PRESETS["rootsift"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_confidence_rewards_evidence_and_lead():
    """Confidence grows with inliers and falls as the runner-up catches up."""
    from cvmatch.matcher import confidence_of

    assert confidence_of(0, 0) == 0.0
    assert confidence_of(40, 40) == 0.0
    assert confidence_of(20, 0) < confidence_of(60, 0) < confidence_of(200, 0) < 1.0
    assert confidence_of(60, 30) < confidence_of(60, 5)
    assert math.isclose(confidence_of(40, 0), 1 - math.exp(-1))


#: name -> (call on the sample index or catalogue, words the error must contain)
BAD_ARGUMENTS = {
    "empty-catalogue": (
        lambda index, catalogue: cvmatch.CoverIndex.build([]),
        "the catalogue is empty",
    ),
    "unknown-preset": (
        lambda index, catalogue: cvmatch.CoverIndex.build(catalogue, preset="surf"),
        "unknown feature preset 'surf'; choose one of: orb, rootsift",
    ),
    "negative-seed": (
        lambda index, catalogue: cvmatch.CoverIndex.build(catalogue, seed=-5),
        "seed must be a whole number from 0 to",
    ),
    "seed-too-large-for-k-means": (
        lambda index, catalogue: cvmatch.CoverIndex.build(catalogue, seed=2**32 - 1),
        "not 4294967295",
    ),
    "no-processes": (
        lambda index, catalogue: cvmatch.CoverIndex.build(catalogue, n_jobs=0),
        "n_jobs must be -1",
    ),
    "no-processes-to-add-with": (
        lambda index, catalogue: index.add(catalogue, n_jobs=0),
        "n_jobs must be -1",
    ),
    "negative-top": (
        lambda index, catalogue: index.match(SAMPLE_PHOTOS / "query03.png", top=-1),
        "top must be a whole number",
    ),
    "fractional-top": (
        lambda index, catalogue: index.match(SAMPLE_PHOTOS / "query03.png", top=1.5),
        "not 1.5",
    ),
    "confidence-above-1": (
        lambda index, catalogue: index.match(
            SAMPLE_PHOTOS / "query03.png", min_confidence=2
        ),
        "min_confidence must be a number from 0 to 1, not 2",
    ),
    "confidence-not-a-number": (
        lambda index, catalogue: index.match(
            SAMPLE_PHOTOS / "query03.png", min_confidence=float("nan")
        ),
        "not nan",
    ),
}


@pytest.mark.parametrize(
    ("call", "says"), BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys()
)
def test_bad_argument_raises_parameter_error_naming_it(
    call, says, sample_index, sample_catalogue
):
    """An argument outside what build, add or match accept raises ParameterError (a
    CvmatchError and a ValueError) that names the argument and the bad value, before
    any cover or photo is read and without changing the index."""
    covers = len(sample_index.covers)

    with pytest.raises(cvmatch.ParameterError) as raised:
        call(sample_index, sample_catalogue[:1])

    assert isinstance(raised.value, cvmatch.CvmatchError)
    assert isinstance(raised.value, ValueError)
    assert says in str(raised.value)
    assert len(sample_index.covers) == covers


def test_confidence_below_threshold_without_rival_is_not_called_ambiguous(
    sample_index,
):
    """A photo whose only verified book falls short of a raised threshold is no match
    because of the threshold, and the reason says so without calling it ambiguous."""
    result = sample_index.match(SAMPLE_PHOTOS / "query03.png", min_confidence=1.0)

    assert not result.matched
    assert not any(candidate.inliers for candidate in result.runners_up[1:])
    assert result.reason.startswith("confidence 0.9")
    assert result.reason.endswith(" below the threshold 1.0")


def test_two_books_fitting_equally_are_called_ambiguous(sample_catalogue):
    """When another book fits the photo as well (here the same cover listed under two
    ids), the best book's lead is gone and the reason says the photo is ambiguous."""
    jurassic_park = next(e for e in sample_catalogue if e.book.id == "cover003")
    copy = cvmatch.CatalogueEntry(
        cvmatch.Book(id="copy", title="Jurassic Park (copy)"), jurassic_park.images
    )
    index = cvmatch.CoverIndex.build(
        [jurassic_park, copy, sample_catalogue[0]], preset="orb", branching=8
    )

    result = index.match(SAMPLE_PHOTOS / "query03.png")

    assert not result.matched
    assert result.reason == "ambiguous: confidence 0.00 below the threshold 0.3"


def test_readme_python_example_runs_and_saves_its_changes(tmp_path, monkeypatch):
    """The README's Python example runs as written; it saves the index it changes,
    and leaves alone the sample.cvmatch that the README's first command builds."""
    readme = (REPO_ROOT / "README.rst").read_text(encoding="utf-8")
    example = readme.split(".. code-block:: python\n", 1)[1].split("\n\n``", 1)[0]
    (tmp_path / "sample_covers").symlink_to(REPO_ROOT / "sample_covers")
    (tmp_path / "sample.cvmatch").write_bytes(b"built by the first command")
    monkeypatch.chdir(tmp_path)

    exec(textwrap.dedent(example), {})

    assert (tmp_path / "sample.cvmatch").read_bytes() == b"built by the first command"
    saved = cvmatch.load_index(tmp_path / "books.cvmatch")
    assert len(saved.books) == 49 and "cover017" not in saved.books


def test_photo_given_as_an_unsupported_object_raises_parameter_error(sample_index):
    """A Pillow image object is not a file: a ParameterError says what to give."""
    with Image.open(SAMPLE_PHOTOS / "query02.png") as photo:
        with pytest.raises(cvmatch.ParameterError, match="give a file path"):
            sample_index.match(photo)
