"""The ``cvmatch`` command answers wrong usage and impossible requests with one line
and the documented exit code, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import CLI_COMMAND, SAMPLE_CATALOGUE, SAMPLE_PHOTOS

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


def test_adding_a_book_already_indexed_exits_3(sample_index_file, cli, tmp_path):
    """``cvmatch add`` with a catalogue whose id is already indexed exits 3 and says
    to remove the book first."""
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


def test_draw_to_unwritable_place_exits_3(sample_index_file, cli, tmp_path):
    """``--draw`` into a folder that does not exist exits 3 naming the output file."""
    output = tmp_path / "no such folder" / "drawn.png"
    result = cli("match", sample_index_file, PHOTO, "--draw", output)
    assert result.exit_code == 3
    assert f"error: {output}: cannot write the picture" in result.stderr
    assert "Traceback" not in result.output


def test_build_into_missing_folder_exits_3(cli, tmp_path):
    """``cvmatch build -o`` into a folder that does not exist exits 3 and says it
    cannot write there."""
    tiny = tmp_path / "tiny.csv"
    cover = SAMPLE_CATALOGUE.parent / "covers" / "cover003.png"
    tiny.write_text(f"id,image,title\ncover003,{cover},Jurassic Park\n", "utf-8")
    output = tmp_path / "no such folder" / "index.cvmatch"

    result = cli("build", tiny, "-o", output, "--preset", "orb", "--jobs", "1")

    assert result.exit_code == 3
    assert f"error: {output}: cannot write here" in result.stderr
    assert "Traceback" not in result.output


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
