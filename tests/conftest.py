"""Shared fixtures: the sample catalogue, an index built from it once per session, and
ways to run the ``cvmatch`` command in-process or as a real program."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import cvmatch
from cvmatch.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_COVERS = REPO_ROOT / "sample_covers"
SAMPLE_CATALOGUE = SAMPLE_COVERS / "catalogue.csv"
SAMPLE_PHOTOS = SAMPLE_COVERS / "photos"

#: The real data set lives next to the repository clone, locally and in CI; a clone
#: elsewhere names it with ``CVMATCH_DATA`` (as the benchmarks do).
SHARED_DATA = Path(os.environ.get("CVMATCH_DATA", REPO_ROOT.parent / "shared" / "data"))

#: The command line that runs ``cvmatch`` as a separate program, in this environment.
CLI_COMMAND = [
    sys.executable,
    "-c",
    "from cvmatch.cli import main; main(prog_name='cvmatch')",
]

#: Which catalogue book each sample photo shows: photo stem -> (book id, title).
QUERY_BOOKS = {
    "query01": ("cover016", "Dance of Death"),
    "query02": ("cover001", "Next"),
    "query03": ("cover003", "Jurassic Park"),
    "query04": ("cover004", "State of Fear"),
    "query05": ("cover015", "The Book of the Dead"),
}


@pytest.fixture(scope="session")
def sample_catalogue():
    """The 50 books of ``sample_covers/catalogue.csv``."""
    return cvmatch.read_catalogue(SAMPLE_CATALOGUE)


@pytest.fixture(scope="session")
def sample_index(sample_catalogue):
    """An ORB index of the whole sample catalogue with the default vocabulary size
    (built once; do not modify it)."""
    return cvmatch.CoverIndex.build(sample_catalogue, preset="orb")


@pytest.fixture(scope="session")
def sample_index_file(sample_index, tmp_path_factory):
    """``sample_index`` saved to a file (copy it before changing it)."""
    path = tmp_path_factory.mktemp("index") / "sample.cvmatch"
    cvmatch.save_index(sample_index, path)
    return path


@pytest.fixture(scope="session")
def plain_results(sample_index):
    """Photo stem -> the ``sample_index`` answer for the unmodified sample photo."""
    return {
        stem: sample_index.match(SAMPLE_PHOTOS / f"{stem}.png") for stem in QUERY_BOOKS
    }


@pytest.fixture
def sample_photo():
    """Return a sample photo (by stem, e.g. ``"query03"``) as an RGB Pillow image."""

    def open_photo(stem: str) -> Image.Image:
        with Image.open(SAMPLE_PHOTOS / f"{stem}.png") as photo:
            return photo.convert("RGB")

    return open_photo


@pytest.fixture
def shared_data():
    """The real data folder ``../shared/data``; skips the test when it is absent."""
    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"real data set not found at {SHARED_DATA} (set CVMATCH_DATA)")
    return SHARED_DATA


@pytest.fixture
def cli():
    """Run ``cvmatch`` in-process: ``cli("match", index, photo)`` -> click Result."""
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [os.fspath(arg) for arg in args])

    return invoke


@pytest.fixture
def cli_process():
    """Run ``cvmatch`` as a separate program, the way a shell runs it.

    ``cli_process(*args, stdout=..., env=..., cwd=...)`` returns the finished
    :class:`subprocess.CompletedProcess`; stdout and stderr are bytes unless
    ``stdout`` is an open file.
    """

    def run(*args, stdout=subprocess.PIPE, env=None, cwd=None, timeout=120):
        command = [*CLI_COMMAND, *(os.fspath(arg) for arg in args)]
        return subprocess.run(
            command,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            timeout=timeout,
        )

    return run
