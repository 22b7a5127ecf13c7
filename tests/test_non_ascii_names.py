"""Paths and titles with accents, CJK and emoji: matched, and printed as UTF-8 by the
CLI whether it writes to a terminal or to a file."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import SAMPLE_COVERS, SAMPLE_PHOTOS

import cvmatch

#: book id -> (sample cover, sample photo, title, author)
BOOKS = {
    "dance": ("cover016", "query01", "Dánse of Death — 死の舞踏", "Preston & Chïld"),
    "next": ("cover001", "query02", "Nëxt 次 📕", "Michaël Crichtön"),
    "park": ("cover003", "query03", "Jurassic Pärk 🦖 ジュラシック", "Crichton 克莱顿"),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A catalogue, its covers, an index and photos, all under non-ASCII names."""
    root = tmp_path_factory.mktemp("library") / "Bücherregal 書棚 📚"
    (root / "Umschläge").mkdir(parents=True)
    (root / "phötos 写真").mkdir()
    lines = ["id,image,title,author"]
    photos = {}
    for book_id, (cover, photo, title, author) in BOOKS.items():
        image = f"Umschläge/{title}.png"
        shutil.copy(SAMPLE_COVERS / "covers" / f"{cover}.png", root / image)
        lines.append(f'{book_id},{image},"{title}","{author}"')
        photos[book_id] = root / "phötos 写真" / f"фото {photo} 📷.png"
        shutil.copy(SAMPLE_PHOTOS / f"{photo}.png", photos[book_id])
    catalogue = root / "katalog é.csv"
    catalogue.write_text("\n".join(lines) + "\n", encoding="utf-8")
    index_file = root / "índice 索引.cvmatch"
    index = cvmatch.CoverIndex.build(
        cvmatch.read_catalogue(catalogue), preset="orb", branching=8
    )
    cvmatch.save_index(index, index_file)
    return {"catalogue": catalogue, "index": index_file, "photos": photos}


@pytest.mark.parametrize("book_id", BOOKS)
def test_photo_at_non_ascii_path_gets_non_ascii_title(book_id, library):
    """Covers and photos at non-ASCII paths are read, and the title comes back as it
    was written in the catalogue."""
    index = cvmatch.load_index(library["index"])
    result = index.match(library["photos"][book_id])
    assert result.book is not None
    assert (result.book.title, result.book.author) == BOOKS[book_id][2:]
    assert result.photo == os.fspath(library["photos"][book_id])


def test_cli_builds_from_non_ascii_catalogue(library, cli, tmp_path):
    """``cvmatch build`` reads a non-ASCII catalogue and names the non-ASCII output."""
    output = tmp_path / "neu 新しい 🆕.cvmatch"
    result = cli(
        "build",
        library["catalogue"],
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
    assert f"into {output}" in result.stdout
    assert sorted(cvmatch.load_index(output).books) == sorted(BOOKS)


def test_cli_prints_non_ascii_titles(library, cli):
    """``cvmatch match`` prints each photo path and its title and author unchanged."""
    photos = list(library["photos"].values())
    result = cli("match", library["index"], *photos)

    assert result.exit_code == 0, result.output
    for book_id, photo in library["photos"].items():
        title, author = BOOKS[book_id][2:]
        assert f"{photo}: {title} by {author}\n" in result.stdout


@pytest.mark.parametrize(
    ("options", "locale"),
    [([], None), ([], "C"), (["--json"], None), (["--json"], "C")],
    ids=["text", "text-C-locale", "json", "json-C-locale"],
)
def test_cli_writes_utf8_when_piped_to_a_file(
    options, locale, library, cli_process, tmp_path
):
    """Redirected to a file, even under the plain C locale, ``cvmatch match`` writes
    the non-ASCII paths and titles as UTF-8 bytes, without replacement characters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONIO")}
    env.pop("PYTHONUTF8", None)
    if locale:
        env.update(LC_ALL=locale, LANG=locale)
    photo = library["photos"]["park"]
    output = tmp_path / "out.txt"

    with output.open("wb") as stdout:
        finished = cli_process(
            "match", library["index"], photo, *options, stdout=stdout, env=env
        )

    assert finished.returncode == 0, finished.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in finished.stderr
    written = output.read_bytes().decode("utf-8")  # strict: fails on bad bytes
    title, author = BOOKS["park"][2:]
    if options:
        (report,) = json.loads(written)
        assert report["photo"] == os.fspath(photo)
        assert report["book"]["title"] == title
    else:
        assert written.startswith(f"{photo}: {title} by {author}\n")


def test_cli_error_names_a_non_ascii_photo_in_utf8(library, cli_process):
    """Piped under the plain C locale, the error for a missing photo at a non-ASCII
    path names that path unchanged, in UTF-8, on one line of stderr; exit 3."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONIO")}
    env.pop("PYTHONUTF8", None)
    env.update(LC_ALL="C", LANG="C")
    missing = library["photos"]["park"].parent / "verlorenes Foto 失われた 🕳.jpg"

    finished = cli_process("match", library["index"], missing, env=env)

    assert finished.returncode == 3
    assert finished.stdout == b""
    assert finished.stderr.decode("utf-8") == f"error: {missing}: no such file\n"
