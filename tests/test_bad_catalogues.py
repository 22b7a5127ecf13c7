"""Catalogues that are broken, tiny or hold unusable covers: a clear error naming the
row and nothing written, or an index that works and reports what it left out."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLE_COVERS, SAMPLE_PHOTOS
from PIL import Image

import cvmatch

COVERS = SAMPLE_COVERS / "covers"
HEADER = "id,image,title,author,isbn,goodreads_id\n"


def _row(book_id, image, title, author="Michael Crichton"):
    return f"{book_id},{image},{title},{author},,\n"


# --- Malformed catalogue files -------------------------------------------------------

#: name -> (catalogue text, words the error must contain)
BROKEN_CATALOGUES = {
    "empty-file": ("", ["the catalogue is empty"]),
    "header-only": (HEADER, ["header but no books"]),
    "missing-image-column": (
        "id,title\ncover001,Next\n",
        ["missing column(s) image"],
    ),
    "missing-id-and-title-columns": (
        f"image,author\n{COVERS / 'cover001.png'},Michael Crichton\n",
        ["missing column(s) id, title"],
    ),
    "missing-image-file": (
        HEADER
        + _row("cover001", COVERS / "cover001.png", "Next")
        + _row("cover999", COVERS / "cover999.png", "Lost"),
        ["row 3", "cover999.png", "not found"],
    ),
    "duplicate-id": (
        HEADER
        + _row("cover001", COVERS / "cover001.png", "Next")
        + _row("cover003", COVERS / "cover003.png", "Jurassic Park")
        + _row("cover001", COVERS / "cover002.png", "Prey"),
        ["row 4", "'cover001'", "already used by row 2"],
    ),
    "empty-title": (
        HEADER + _row("cover001", COVERS / "cover001.png", ""),
        ["row 2", "'title' field is empty"],
    ),
    # Read leniently, the open quote would make one title of every row after it.
    "quote-not-closed": (
        HEADER
        + _row("cover001", COVERS / "cover001.png", "Next")
        + _row("cover003", COVERS / "cover003.png", '"Jurassic Park')
        + _row("cover002", COVERS / "cover002.png", "Prey"),
        ["row 3", "not valid CSV", "must end with one"],
    ),
    "text-after-a-closing-quote": (
        HEADER + _row("cover003", COVERS / "cover003.png", '"Jurassic" Park'),
        ["row 2", "not valid CSV"],
    ),
}


def _write_catalogue(folder, text, encoding="utf-8"):
    path = folder / "catalogue.csv"
    path.write_text(text, encoding=encoding)
    return path


@pytest.mark.parametrize(
    ("text", "says"), BROKEN_CATALOGUES.values(), ids=BROKEN_CATALOGUES.keys()
)
def test_broken_catalogue_raises_error_naming_file_and_row(text, says, tmp_path):
    """An empty or malformed catalogue raises CatalogueError naming the CSV file, the
    row at fault (counting the header as row 1) and what is wrong with it."""
    path = _write_catalogue(tmp_path, text)

    with pytest.raises(cvmatch.CatalogueError) as raised:
        cvmatch.read_catalogue(path)
    assert str(raised.value).startswith(str(path))
    for words in says:
        assert words in str(raised.value)


def test_quoted_fields_keep_their_commas_and_quotes(tmp_path):
    """Strict reading still takes quoting as spreadsheets write it."""
    text = (
        HEADER
        + _row("cover003", COVERS / "cover003.png", '"Jurassic Park, a novel"')
        + _row("cover001", COVERS / "cover001.png", '"The ""Next"" one"')
    )
    entries = cvmatch.read_catalogue(_write_catalogue(tmp_path, text))
    assert [entry.book.title for entry in entries] == [
        "Jurassic Park, a novel",
        'The "Next" one',
    ]


def test_catalogue_not_in_utf8_says_to_save_it_as_utf8(tmp_path):
    """A catalogue saved in Latin-1 is refused with a message that says to use UTF-8."""
    text = HEADER + _row("cover001", COVERS / "cover001.png", "Next", "Michaël")
    path = _write_catalogue(tmp_path, text, encoding="latin-1")

    with pytest.raises(cvmatch.CatalogueError, match="UTF-8"):
        cvmatch.read_catalogue(path)


@pytest.mark.parametrize(
    ("text", "says"), BROKEN_CATALOGUES.values(), ids=BROKEN_CATALOGUES.keys()
)
def test_cli_build_from_broken_catalogue_writes_nothing(text, says, cli, tmp_path):
    """``cvmatch build`` on a broken catalogue exits 3 with one error line naming the
    row, and leaves no index and no temporary file behind."""
    path = _write_catalogue(tmp_path, text)
    output = tmp_path / "out.cvmatch"
    before = set(tmp_path.iterdir())

    result = cli("build", path, "-o", output, "--preset", "orb", "--jobs", "1")

    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {path}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert all(words in result.stderr for words in says)
    assert "Traceback" not in result.output
    assert not output.exists()
    assert set(tmp_path.iterdir()) == before


def test_cli_build_from_broken_catalogue_keeps_the_existing_index(
    sample_index_file, cli, tmp_path
):
    """``cvmatch build -o EXISTING`` from a catalogue with a repeated id exits 3 and
    leaves EXISTING byte for byte as it was, with nothing next to it."""
    text, says = BROKEN_CATALOGUES["duplicate-id"]
    path = _write_catalogue(tmp_path, text)
    existing = tmp_path / "books.cvmatch"
    existing.write_bytes(sample_index_file.read_bytes())

    result = cli("build", path, "-o", existing, "--preset", "orb", "--jobs", "1")

    assert result.exit_code == 3
    assert all(words in result.stderr for words in says)
    assert existing.read_bytes() == sample_index_file.read_bytes()
    assert sorted(tmp_path.iterdir()) == sorted([path, existing])


def test_cli_build_with_no_usable_cover_says_what_to_change(cli, tmp_path):
    """A catalogue whose only covers are blank fails to build with a message about the
    images (exit 3), and writes nothing."""
    for name in ("blank1.png", "blank2.png"):
        Image.new("RGB", (300, 450), (20, 60, 160)).save(tmp_path / name)
    path = _write_catalogue(
        tmp_path, HEADER + _row("a", "blank1.png", "A") + _row("b", "blank2.png", "B")
    )
    output = tmp_path / "out.cvmatch"
    before = set(tmp_path.iterdir())

    result = cli("build", path, "-o", output, "--preset", "orb", "--jobs", "1")

    assert result.exit_code == 3
    assert "could be indexed" in result.stderr and "cover pictures" in result.stderr
    assert "blank1.png: too few features" in result.stderr
    assert "Traceback" not in result.output
    assert set(tmp_path.iterdir()) == before


# --- Unusable covers in an otherwise good catalogue ----------------------------------


#: Cover files of ``odd_catalogue`` that cannot be indexed -> how the reason begins.
UNUSABLE_COVERS = {
    "plain.png": "too few features",
    "thumbnail.png": "too small (40x60 pixels",
    "empty.jpg": "the file is empty",
    "notes.jpg": "not an image file cvmatch can read",
    "damaged.png": "damaged image file",
}


@pytest.fixture(scope="module")
def odd_catalogue(tmp_path_factory):
    """Three real covers, a plain single-colour cover, a 40x60 thumbnail, an empty
    file, a text file and the first 3,000 bytes of a PNG cover."""
    folder = tmp_path_factory.mktemp("odd-catalogue")
    Image.new("RGB", (400, 600), (200, 30, 30)).save(folder / "plain.png")
    with Image.open(COVERS / "cover004.png") as cover:
        cover.convert("RGB").resize((40, 60), Image.Resampling.LANCZOS).save(
            folder / "thumbnail.png"
        )
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture of a cover")
    (folder / "damaged.png").write_bytes((COVERS / "cover002.png").read_bytes()[:3000])
    text = (
        HEADER
        + _row("cover003", COVERS / "cover003.png", "Jurassic Park")
        + _row("cover001", COVERS / "cover001.png", "Next")
        + _row("cover016", COVERS / "cover016.png", "Dance of Death", "Preston")
        + _row("plain", "plain.png", "Plain Red")
        + _row("thumb", "thumbnail.png", "State of Fear (thumbnail)")
        + _row("empty", "empty.jpg", "Empty")
        + _row("notes", "notes.jpg", "Notes")
        + _row("damaged", "damaged.png", "Prey (damaged)")
    )
    return _write_catalogue(folder, text)


@pytest.fixture(scope="module")
def odd_index(odd_catalogue):
    return cvmatch.CoverIndex.build(
        cvmatch.read_catalogue(odd_catalogue), preset="orb", branching=8
    )


def test_plain_colour_cover_is_left_out_and_reported(odd_index, odd_catalogue):
    """A single-colour cover is listed in ``index.skipped`` with the reason; the
    other covers are indexed and still matched."""
    skipped = dict(odd_index.skipped)
    plain = str(odd_catalogue.parent / "plain.png")
    assert plain in skipped and skipped[plain].startswith("too few features")
    assert "plain" not in odd_index.books

    result = odd_index.match(SAMPLE_PHOTOS / "query03.png")
    assert result.book is not None and result.book.title == "Jurassic Park"


def test_thumbnail_cover_is_left_out_and_reported(odd_index, odd_catalogue):
    """A 40x60 thumbnail cover is listed in ``index.skipped`` as too small rather
    than indexed."""
    thumbnail = str(odd_catalogue.parent / "thumbnail.png")
    assert dict(odd_index.skipped)[thumbnail].startswith("too small (40x60 pixels")
    assert "thumb" not in odd_index.books


def test_unreadable_covers_are_left_out_with_a_reason_that_does_not_repeat_them(
    odd_index, odd_catalogue
):
    """Empty, non-image and damaged cover files are listed in ``index.skipped`` by
    path, with a reason that says what is wrong without naming the file again; the
    build goes on without them."""
    skipped = dict(odd_index.skipped)
    for name in ("empty.jpg", "notes.jpg", "damaged.png"):
        reason = skipped[str(odd_catalogue.parent / name)]
        assert reason.startswith(UNUSABLE_COVERS[name])
        assert name not in reason
    assert sorted(odd_index.books) == ["cover001", "cover003", "cover016"]


def test_cli_build_reports_each_left_out_cover_once_and_completes(
    odd_catalogue, cli, tmp_path
):
    """``cvmatch build`` names each left-out cover and its book in one warning line
    on stderr, with its reason, exits 0 and writes an index whose ``info`` lists
    each of them once."""
    output = tmp_path / "odd.cvmatch"
    result = cli(
        "build",
        odd_catalogue,
        "-o",
        output,
        "--preset",
        "orb",
        "--branching",
        "8",
        "--jobs",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    info = cli("info", output)
    assert info.exit_code == 0
    assert f"skipped images: {len(UNUSABLE_COVERS)}\n" in info.stdout

    for name, reason in UNUSABLE_COVERS.items():
        image = str(odd_catalogue.parent / name)
        (warning,) = [line for line in result.stderr.splitlines() if image in line]
        book = "thumb" if name == "thumbnail.png" else name.split(".")[0]
        assert warning.startswith(
            f"warning: cover {image} of book {book} left out: {reason}"
        )
        assert warning.count(name) == 1
        (listed,) = [line for line in info.stdout.splitlines() if image in line]
        assert listed.startswith(f"  {image}: {reason}")
        assert listed.count(name) == 1


# --- Tiny catalogues -----------------------------------------------------------------

#: name -> (book ids, vocabulary branching)
TINY_CATALOGUES = {
    "one-book": (["cover003"], 16),
    "two-books": (["cover003", "cover001"], 16),
    # 800 descriptors for a vocabulary of up to 64 * 64 = 4,096 words.
    "fewer-descriptors-than-words": (["cover003"], 64),
}


@pytest.mark.parametrize(
    ("book_ids", "branching"), TINY_CATALOGUES.values(), ids=TINY_CATALOGUES.keys()
)
def test_tiny_catalogue_builds_and_scores_stay_finite(
    book_ids, branching, sample_catalogue
):
    """A catalogue of one or two books, or with fewer descriptors than the vocabulary
    could hold, builds; its own photo is matched, another photo is not, and every
    confidence and score is a finite number."""
    entries = [entry for entry in sample_catalogue if entry.book.id in book_ids]
    index = cvmatch.CoverIndex.build(entries, preset="orb", branching=branching)
    assert sorted(index.books) == sorted(book_ids)
    descriptors = sum(len(cover.features) for cover in index.covers)
    assert 2 <= index.vocabulary.n_words <= descriptors

    own = index.match(SAMPLE_PHOTOS / "query03.png", top=5)
    other = index.match(SAMPLE_PHOTOS / "query05.png", top=5)

    assert own.book is not None and own.book.id == "cover003"
    assert other.book is None
    assert other.runners_up  # the one book was considered, with a score
    for result in (own, other):
        _assert_all_numbers_finite(json.dumps(result.to_dict()))


def _refuse_constant(name):
    raise AssertionError(f"{name} in the output")


def _assert_all_numbers_finite(text):
    """Parse JSON text, failing on the NaN and Infinity that Python's json writes."""
    return json.loads(text, parse_constant=_refuse_constant)


@pytest.mark.parametrize(
    "options",
    [[], ["--branching", "64"]],
    ids=["default-vocabulary", "vocabulary-larger-than-descriptors"],
)
def test_cli_one_book_catalogue_builds_and_prints_finite_scores(options, cli, tmp_path):
    """``cvmatch build`` of a one-book catalogue, with the default vocabulary or one
    that could hold more words than there are descriptors, succeeds; ``match --json``
    names the book in its photo, not in another, and prints only finite numbers."""
    catalogue = _write_catalogue(
        tmp_path, HEADER + _row("cover003", COVERS / "cover003.png", "Jurassic Park")
    )
    output = tmp_path / "one.cvmatch"

    built = cli("build", catalogue, "-o", output, "--jobs", "1", *options)
    assert built.exit_code == 0, built.output
    assert "Traceback" not in built.output

    photos = [SAMPLE_PHOTOS / "query03.png", SAMPLE_PHOTOS / "query05.png"]
    matched = cli("match", output, *photos, "--json", "--top", "3")
    assert matched.exit_code == 1, matched.output
    own, other = _assert_all_numbers_finite(matched.stdout)
    assert own["book"]["id"] == "cover003"
    assert other["book"] is None and other["reason"]


@pytest.mark.parametrize("command", ["build", "add"])
def test_cli_directory_given_as_catalogue_is_bad_input(
    command, sample_index_file, cli, tmp_path
):
    """A directory given where the catalogue CSV goes is bad input (exit 3) with one
    line that says it is a directory, as for a missing catalogue, not a usage error."""
    index = tmp_path / "books.cvmatch"
    index.write_bytes(sample_index_file.read_bytes())
    arguments = [tmp_path, "-o", index] if command == "build" else [index, tmp_path]

    result = cli(command, *arguments, "--jobs", "1")

    assert result.exit_code == 3
    assert result.stderr == f"error: {tmp_path}: is a directory, not a catalogue file\n"
    assert index.read_bytes() == sample_index_file.read_bytes()
