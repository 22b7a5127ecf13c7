"""The ``cvmatch`` command answers wrong usage and impossible requests with one line
and the documented exit code, never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import CLI_COMMAND, REPO_ROOT, SAMPLE_CATALOGUE, SAMPLE_PHOTOS

import cvmatch.matcher
from cvmatch.cli import EXIT_OUTPUT_CLOSED

PHOTO = SAMPLE_PHOTOS / "query02.png"

USAGE_ERRORS = {
    "unknown-command": ["recognise"],
    "match-without-photo": ["match", "{index}"],
    "negative-top": ["match", "{index}", PHOTO, "--top", "-1"],
    "draw-with-two-photos": ["match", "{index}", PHOTO, PHOTO, "--draw", "out.png"],
    "build-without-output": ["build", SAMPLE_CATALOGUE],
    "unknown-preset": ["build", SAMPLE_CATALOGUE, "-o", "x", "--preset", "surf"],
    "negative-seed": ["build", SAMPLE_CATALOGUE, "-o", "x", "--seed", "-5"],
    "seed-beyond-32-bits": [
        "build",
        SAMPLE_CATALOGUE,
        "-o",
        "x",
        "--seed",
        "99999999999",
    ],
    "no-processes-to-build-with": ["build", SAMPLE_CATALOGUE, "-o", "x", "--jobs", "0"],
    "no-processes-to-add-with": ["add", "{index}", SAMPLE_CATALOGUE, "--jobs", "0"],
    "jobs-not-a-number": ["add", "{index}", SAMPLE_CATALOGUE, "--jobs", "all"],
    "remove-without-id": ["remove", "{index}"],
}


def test_no_command_shows_the_help_and_exits_2(cli):
    """``cvmatch`` alone prints its help, with the commands and exit codes."""
    result = cli()
    assert result.exit_code == 2
    assert "Commands:" in result.stdout and "Exit codes:" in result.stdout


def _exit_codes_in_help(text):
    """Exit code -> its meaning, from the "Exit codes:" list of a --help text."""
    listed = text.split("Exit codes:\n", 1)[1]
    codes, code = {}, None
    for line in listed.splitlines():
        found = re.match(r"\s+(\d+)\s+(.*)", line)
        if found:
            code = int(found[1])
            codes[code] = found[2]
        elif line.strip():
            codes[code] += " " + line.strip()
    return codes


def _exit_codes_in_readme():
    text = (REPO_ROOT / "README.rst").read_text(encoding="utf-8")
    table = text.split("code   meaning\n", 1)[1].split("\n\n", 1)[0]
    return {int(code) for code in re.findall(r"^(\d+) ", table, re.MULTILINE)}


#: command -> (exit codes its --help lists, words that code 3's meaning must hold)
COMMAND_EXIT_CODES = {
    "match": ({0, 1, 2, 3, 4}, ["photo", "--draw"]),
    "build": ({0, 2, 3, 4}, ["catalogue", "index file cannot be written"]),
    "info": ({0, 2, 3, 4}, ["index file cannot be used"]),
    "add": ({0, 2, 3, 4}, ["catalogue", "already in the index"]),
    "remove": ({0, 2, 3, 4}, ["is not in the index"]),
}


@pytest.mark.parametrize("command", COMMAND_EXIT_CODES)
def test_each_command_help_lists_the_exit_codes_that_fit_it(command, cli):
    """``cvmatch COMMAND --help`` lists the exit codes that command can end with:
    only match speaks of recognised photos, and the bad input of add and remove
    names the book ids given to them."""
    codes, bad_input = COMMAND_EXIT_CODES[command]
    listed = _exit_codes_in_help(cli(command, "--help").stdout)

    assert set(listed) == codes
    assert all(words in listed[3] for words in bad_input)
    assert ("recognised" in listed[0]) == (command == "match")


def test_help_and_readme_list_the_same_exit_codes(cli):
    """``cvmatch --help`` lists every exit code of the README's table, 130 and 141
    included, and no command's --help lists a code the README does not."""
    readme = _exit_codes_in_readme()

    assert set(_exit_codes_in_help(cli("--help").stdout)) == readme
    for command in COMMAND_EXIT_CODES:
        assert set(_exit_codes_in_help(cli(command, "--help").stdout)) <= readme


@pytest.mark.parametrize("arguments", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_wrong_usage_exits_2_without_traceback(arguments, sample_index_file, cli):
    """A wrong command line exits 2, before any cover is read, with one line that says
    what is wrong and where the help is, not a traceback or a page of usage text."""
    arguments = [
        str(sample_index_file) if argument == "{index}" else argument
        for argument in arguments
    ]
    result = cli(*arguments)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert "--help'" in result.stderr


def test_removing_unknown_book_exits_3_and_keeps_the_index(
    sample_index_file, cli, tmp_path
):
    """``cvmatch remove`` with an id that is not in the index exits 3 naming the id,
    and leaves the index file as it was."""
    path = tmp_path / "index.cvmatch"
    path.write_bytes(sample_index_file.read_bytes())

    result = cli("remove", path, "cover001", "no-such-book")

    assert result.exit_code == 3
    assert result.stderr == "error: no book with id 'no-such-book' in the index\n"
    assert path.read_bytes() == sample_index_file.read_bytes()


def _refuse_to_read_covers(*arguments):
    raise AssertionError("a cover was read")


def test_adding_a_book_already_indexed_exits_3_before_reading_covers(
    sample_index_file, cli, tmp_path, monkeypatch
):
    """``cvmatch add`` with a catalogue whose id is already indexed exits 3 and says
    to remove the book first, before any cover of the catalogue is read."""
    monkeypatch.setattr(cvmatch.matcher, "_cover_features", _refuse_to_read_covers)
    path = tmp_path / "index.cvmatch"
    path.write_bytes(sample_index_file.read_bytes())
    catalogue = tmp_path / "more.csv"
    cover = SAMPLE_CATALOGUE.parent / "covers" / "cover001.png"
    catalogue.write_text(f"id,image,title\ncover001,{cover},Next\n", encoding="utf-8")

    result = cli("add", path, catalogue, "--jobs", "1")

    assert result.exit_code == 3
    assert "'cover001' is already in the index" in result.stderr
    assert "remove it first" in result.stderr
    assert path.read_bytes() == sample_index_file.read_bytes()


def _unwritable_outputs(extension):
    """name -> (make the output path in a folder, words the error must contain)."""

    def in_a_file(folder):
        (folder / "notes.txt").write_text("a file, not a folder")
        return folder / "notes.txt" / f"out{extension}"

    def a_directory(folder):
        (folder / f"out{extension}").mkdir()
        return folder / f"out{extension}"

    return {
        "missing-folder": (
            lambda folder: folder / "no such folder" / f"out{extension}",
            "the folder {folder}/no such folder does not exist; create it",
        ),
        "folder-is-a-file": (in_a_file, "{folder}/notes.txt is not a folder"),
        "directory": (a_directory, "is a directory, not a"),
    }


BUILD_OUTPUTS = _unwritable_outputs(".cvmatch")

DRAW_OUTPUTS = {
    **_unwritable_outputs(".png"),
    "text-extension": (
        lambda folder: folder / "out.txt",
        "not the name of a picture cvmatch can write; end the --draw file name",
    ),
    "no-extension": (lambda folder: folder / "out", "not the name of a picture"),
}


@pytest.mark.parametrize(("make", "says"), DRAW_OUTPUTS.values(), ids=DRAW_OUTPUTS)
def test_draw_to_unwritable_place_exits_3_before_matching(
    make, says, sample_index_file, cli, tmp_path
):
    """``--draw`` into a folder that does not exist, under a file, onto a directory,
    or with an extension Pillow cannot write exits 3 with one line naming the output,
    before the photo is matched, and writes nothing."""
    output = make(tmp_path)
    before = sorted(tmp_path.rglob("*"))

    result = cli("match", sample_index_file, PHOTO, "--draw", output)

    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {output}: ")
    assert says.format(folder=tmp_path) in result.stderr
    assert result.stderr.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(("make", "says"), BUILD_OUTPUTS.values(), ids=BUILD_OUTPUTS)
def test_build_into_unwritable_place_exits_3_before_reading_covers(
    make, says, cli, tmp_path
):
    """``cvmatch build -o`` into a folder that does not exist, under a file or onto a
    directory exits 3 with one line naming the output, before any cover is read."""
    output = make(tmp_path)

    result = cli("build", SAMPLE_CATALOGUE, "-o", output, "--jobs", "1")

    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {output}: ")
    assert says.format(folder=tmp_path) in result.stderr
    assert result.stderr.count("\n") == 1  # no "Reading covers" progress


def _spellings_of(path):
    """name -> another way to name ``path``: as it is, through '..', a symbolic link."""
    link = path.parent / f"link-to-{path.name}"
    link.symlink_to(path)
    return {
        "same-path": path,
        "through-parent": path.parent / ".." / path.parent.name / path.name,
        "symbolic-link": link,
    }


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_build_refuses_to_overwrite_its_catalogue(cli, tmp_path):
    """``cvmatch build CAT -o CAT``, however CAT is spelt, exits 3 with one line that
    says to give -o another name, and leaves the catalogue as it was."""
    catalogue = tmp_path / "catalogue.csv"
    cover = SAMPLE_CATALOGUE.parent / "covers" / "cover003.png"
    catalogue.write_text(f"id,image,title\ncover003,{cover},Jurassic Park\n", "utf-8")
    text = catalogue.read_text("utf-8")

    for name, output in _spellings_of(catalogue).items():
        result = cli("build", catalogue, "-o", output, "--jobs", "1")

        assert result.exit_code == 3, name
        assert result.stderr == (
            f"error: {output}: is the catalogue, which -o would overwrite; "
            "give -o another file name\n"
        )
        assert catalogue.read_text("utf-8") == text


def test_build_refuses_to_overwrite_a_cover_image(cli, tmp_path):
    """``cvmatch build -o`` naming one of the catalogue's cover images exits 3 before
    reading the covers, and leaves the image as it was."""
    cover = tmp_path / "cover003.png"
    cover.write_bytes(
        (SAMPLE_CATALOGUE.parent / "covers" / "cover003.png").read_bytes()
    )
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("id,image,title\ncover003,cover003.png,Jurassic Park\n")

    result = cli("build", catalogue, "-o", cover, "--jobs", "1")

    assert result.exit_code == 3
    assert result.stderr == (
        f"error: {cover}: is a cover image of the catalogue, which -o would "
        "overwrite; give -o another file name\n"
    )
    assert (
        cover.read_bytes()
        == (SAMPLE_CATALOGUE.parent / "covers" / "cover003.png").read_bytes()
    )


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_draw_refuses_to_overwrite_the_photo(sample_index_file, cli, tmp_path):
    """``cvmatch match INDEX P --draw P``, however P is spelt, exits 3 before matching
    with one line that says to give --draw another name, and leaves the photo as it
    was."""
    photo = tmp_path / "photo.png"
    photo.write_bytes(PHOTO.read_bytes())

    for name, output in _spellings_of(photo).items():
        result = cli("match", sample_index_file, photo, "--draw", output)

        assert result.exit_code == 3, name
        assert result.stdout == ""
        assert result.stderr == (
            f"error: {output}: is the photo, which --draw would overwrite; "
            "give --draw another file name\n"
        )
        assert photo.read_bytes() == PHOTO.read_bytes()


def test_bad_input_from_a_real_process_has_no_traceback(cli_process, tmp_path):
    """Run as a real program, ``cvmatch match`` on a missing index prints one error
    line on stderr and exits 3."""
    missing = tmp_path / "missing.cvmatch"
    finished = cli_process("match", missing, PHOTO)
    assert finished.returncode == 3
    assert finished.stderr.decode() == f"error: {missing}: no such index file\n"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
@pytest.mark.parametrize(
    "arguments",
    [["match", "{index}", PHOTO, PHOTO], []],
    ids=["match", "help-of-cvmatch-alone"],
)
def test_output_closed_by_its_reader_ends_quietly(arguments, sample_index_file):
    """When what reads the output has gone (``cvmatch match ... | head``), cvmatch
    stops with the code a shell gives for SIGPIPE (141), not an internal error or a
    traceback, and prints nothing on stderr."""
    arguments = [
        str(sample_index_file) if argument == "{index}" else str(argument)
        for argument in arguments
    ]
    process = subprocess.Popen(
        [*CLI_COMMAND, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # the reader leaves before the first line is written

    _, stderr = process.communicate(timeout=120)

    assert process.returncode == EXIT_OUTPUT_CLOSED
    assert stderr.decode() == ""
