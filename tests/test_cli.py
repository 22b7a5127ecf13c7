"""The ``cvmatch`` command: output, JSON, drawing, and exit codes on real photos."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import QUERY_BOOKS, SAMPLE_CATALOGUE, SAMPLE_PHOTOS
from PIL import Image

import cvmatch
from cvmatch.cli import EXIT_BAD_INPUT, EXIT_MATCH, EXIT_NO_MATCH, EXIT_USAGE


def test_match_prints_title_author_and_goodreads_link(cli, sample_index_file):
    """A recognised photo prints its title, author and Goodreads link; exit 0."""
    result = cli("match", sample_index_file, SAMPLE_PHOTOS / "query03.png")
    assert result.exit_code == EXIT_MATCH, result.output
    assert "Jurassic Park by Michael Crichton" in result.output
    assert "https://www.goodreads.com/book/show/7677" in result.output


def test_match_json_lists_every_photo_with_runners_up(cli, sample_index_file):
    """``--json --top 2`` gives one record per photo, with two runners-up each."""
    photos = [SAMPLE_PHOTOS / f"{stem}.png" for stem in sorted(QUERY_BOOKS)]
    result = cli("match", sample_index_file, *photos, "--json", "--top", "2")
    assert result.exit_code == EXIT_MATCH, result.output
    records = json.loads(result.output)
    assert [record["book"]["id"] for record in records] == [
        QUERY_BOOKS[stem][0] for stem in sorted(QUERY_BOOKS)
    ]
    for record in records:
        assert record["matched"] is True
        assert record["book"]["goodreads_url"].startswith("https://www.goodreads.com/")
        # The cover image that fitted, as the catalogue names it, so that a caller
        # can show it beside the photo.
        assert Path(record["cover"]).name == f"{record['book']['id']}.png"
        assert len(record["runners_up"]) == 2
        assert len(record["corners"]) == 4
        assert 0 < record["confidence"] <= 1


def test_no_match_exits_with_1_and_says_why(cli, sample_index_file, shared_data):
    """A photo of a book that is in no catalogue prints 'no match' and exits 1."""
    photo = shared_data / "photos/not_in_catalogue/scar.jpeg"
    result = cli("match", sample_index_file, photo)
    assert result.exit_code == EXIT_NO_MATCH
    assert "no match (" in result.output


def test_one_bad_photo_among_good_ones_exits_with_3(cli, sample_index_file, tmp_path):
    """Good photos are still answered when another is unreadable; exit 3 at the end."""
    broken = tmp_path / "broken.jpg"
    broken.write_text("this is not a picture")
    result = cli("match", sample_index_file, SAMPLE_PHOTOS / "query02.png", broken)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "Next by Michael Crichton" in result.output
    assert "broken.jpg" in result.output


def test_draw_writes_the_photo_with_the_cover_outlined(
    cli, sample_index_file, tmp_path
):
    """``--draw`` writes a picture of the photo's size with a green outline on it."""
    output = tmp_path / "outlined.png"
    photo = SAMPLE_PHOTOS / "query04.png"
    result = cli("match", sample_index_file, photo, "--draw", output)
    assert result.exit_code == EXIT_MATCH, result.output
    drawn = np.asarray(Image.open(output).convert("RGB")).astype(int)
    original = np.asarray(Image.open(photo).convert("RGB")).astype(int)
    assert drawn.shape == original.shape
    changed = np.any(drawn != original, axis=2)
    green = (drawn[..., 1] > 180) & (drawn[..., 0] < 80) & (drawn[..., 2] < 80)
    assert changed.mean() > 0.005  # an outline, not a copy...
    assert changed.mean() < 0.2  # ...and not a repaint
    assert green[changed].mean() > 0.5


def test_draw_with_several_photos_is_a_usage_error(cli, sample_index_file, tmp_path):
    """``--draw`` takes one photo; more is a usage error with exit code 2."""
    photos = [SAMPLE_PHOTOS / "query01.png", SAMPLE_PHOTOS / "query02.png"]
    result = cli("match", sample_index_file, *photos, "--draw", tmp_path / "x.png")
    assert result.exit_code == EXIT_USAGE
    assert not (tmp_path / "x.png").exists()


def test_runners_up_that_did_not_fit_say_so_instead_of_0_inliers(
    cli, sample_index_file
):
    """A runner-up whose fit was rejected or never checked reads 'no verified fit'
    in the text output, not '0 inliers'; the JSON keeps its inliers as 0."""
    photo = SAMPLE_PHOTOS / "query03.png"

    text = cli("match", sample_index_file, photo, "--top", "3")
    (record,) = json.loads(
        cli("match", sample_index_file, photo, "--top", "3", "--json").stdout
    )

    unfitted = [c for c in record["runners_up"] if c["inliers"] == 0]
    assert unfitted  # the photo shows one book; the others do not fit it
    for candidate in unfitted:
        assert f"runner-up: {candidate['title']} (no verified fit, score" in text.stdout
    assert "0 inliers" not in text.stdout


def test_one_book_and_one_cover_are_counted_in_the_singular(cli, tmp_path):
    """``cvmatch build`` of one book with one cover says '1 cover of 1 book'."""
    catalogue = tmp_path / "one.csv"
    cover = SAMPLE_CATALOGUE.parent / "covers" / "cover003.png"
    catalogue.write_text(f"id,image,title\ncover003,{cover},Jurassic Park\n")
    output = tmp_path / "one.cvmatch"

    result = cli("build", catalogue, "-o", output, "--branching", "8", "--jobs", "1")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("indexed 1 cover of 1 book (64 visual words, orb)")


@pytest.mark.parametrize("place", ["before-the-command", "after-the-command"], ids=str)
def test_verbose_is_taken_before_or_after_the_command(place, cli, sample_index_file):
    """``-v`` works both as ``cvmatch -v match ...`` and ``cvmatch match -v ...``:
    the answer is the same, and the cvmatch logger reports more (INFO)."""
    photo = SAMPLE_PHOTOS / "query03.png"
    arguments = ["match", sample_index_file, photo]
    arguments.insert(0 if place == "before-the-command" else 1, "-v")
    logger = logging.getLogger("cvmatch")
    level = logger.level

    try:
        result = cli(*arguments)
        assert logger.level == logging.INFO
    finally:
        logger.setLevel(level)

    assert result.exit_code == EXIT_MATCH, result.output
    assert result.stdout == cli("match", sample_index_file, photo).stdout
    assert f"info: {photo}: Jurassic Park" in result.stderr


def test_info_describes_the_index(cli, sample_index_file):
    """``info --json`` reports the preset and the counts of books and covers."""
    result = cli("info", sample_index_file, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["preset"] == "orb"
    assert summary["books"] == summary["covers"] == 50
    assert summary["visual_words"] > 16


def test_build_add_remove_round_trip(cli, tmp_path):
    """build, add and remove change what a photo is recognised as, as they should."""
    rows = list(csv.DictReader(SAMPLE_CATALOGUE.open(encoding="utf-8")))
    shutil.copytree(SAMPLE_CATALOGUE.parent / "covers", tmp_path / "covers")
    first = [row for row in rows if row["id"] != "cover003"]
    extra = [row for row in rows if row["id"] == "cover003"]
    # Twenty books keep the build quick.
    for name, chosen in (("first.csv", first[20:40]), ("extra.csv", extra)):
        with (tmp_path / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(chosen)
    index = tmp_path / "books.cvmatch"
    photo = SAMPLE_PHOTOS / "query03.png"

    built = cli(
        "build",
        tmp_path / "first.csv",
        "-o",
        index,
        "--preset",
        "orb",
        "--branching",
        "16",
        "--jobs",
        "1",
    )
    assert built.exit_code == 0, built.output
    assert built.stdout.startswith("indexed 20 covers of 20 books (")
    # Away from a terminal the progress bar writes its label once; the next line
    # says that reading is over and the longer vocabulary step has begun.
    assert built.stderr.splitlines() == [
        "Reading covers",
        "Learning the visual words and indexing...",
    ]
    assert cli("match", index, photo).exit_code == EXIT_NO_MATCH

    added = cli("add", index, tmp_path / "extra.csv", "--jobs", "1")
    assert added.exit_code == 0, added.output
    assert added.stdout == "added 1 cover; the index now holds 21 books\n"
    assert added.stderr.splitlines() == ["Reading covers", "Indexing the covers..."]
    matched = cli("match", index, photo)
    assert matched.exit_code == EXIT_MATCH and "Jurassic Park" in matched.output

    removed = cli("remove", index, "cover003")
    assert removed.exit_code == 0, removed.output
    assert cli("match", index, photo).exit_code == EXIT_NO_MATCH
    assert cli("remove", index, "cover003").exit_code == EXIT_BAD_INPUT
    assert len(cvmatch.load_index(index).books) == 20


@pytest.mark.parametrize(
    "arguments",
    [["match"], ["build", "x.csv"], ["match", "i", "p", "--top", "-1"], ["frobnicate"]],
    ids=["match-without-arguments", "build-without-output", "negative-top", "unknown"],
)
def test_usage_errors_exit_with_2(cli, arguments):
    """Wrong command lines exit with the usage code and no traceback."""
    result = cli(*arguments)
    assert result.exit_code == EXIT_USAGE
    assert "Traceback" not in result.output
