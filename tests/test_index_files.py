"""Index files that are damaged, foreign or hostile are refused with IndexFormatError,
never executed; a save that is cut short leaves the previous index intact."""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import SAMPLE_COVERS, SAMPLE_PHOTOS

import cvmatch

#: Created by the crafted files below if loading them ever runs their code.
MARKER = "cvmatch-was-made-to-run-code"


class _RunsCommand:
    """Unpickling an instance runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _arrays(index_file):
    with np.load(index_file) as archive:
        return {name: archive[name] for name in archive.files}


def _savez(path, arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _with_metadata(index_file, **changes):
    arrays = _arrays(index_file)
    metadata = json.loads(arrays["metadata"].tobytes())
    metadata.update(changes)
    arrays["metadata"] = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    return arrays


def _truncated(index_file, path):
    content = index_file.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def _future_version(index_file, path):
    _savez(path, _with_metadata(index_file, format_version=2))


def _unknown_preset(index_file, path):
    _savez(path, _with_metadata(index_file, preset="surf"))


def _random_bytes(index_file, path):
    path.write_bytes(np.random.default_rng(0).bytes(50_000))


def _empty(index_file, path):
    path.write_bytes(b"")


def _directory(index_file, path):
    path.mkdir()


def _pickle_that_runs_a_command(index_file, path):
    path.write_bytes(pickle.dumps(_RunsCommand(path.parent / MARKER)))


def _npz_with_pickled_member(index_file, path):
    arrays = _arrays(index_file)
    arrays["metadata"] = np.array([_RunsCommand(path.parent / MARKER)], dtype=object)
    _savez(path, arrays)


def _plain_npy(index_file, path):
    with open(path, "wb") as handle:
        np.save(handle, _arrays(index_file)["descriptors"])


def _zip_of_other_files(index_file, path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not an index")


def _member_declaring_30_gigabytes(index_file, path):
    header = io.BytesIO()
    shape = {"descr": "|u1", "fortran_order": False, "shape": (10**9, 32)}
    np.lib.format.write_array_header_1_0(header, shape)
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in _arrays(index_file).items():
            member = io.BytesIO()
            np.lib.format.write_array(member, array)
            content = member.getvalue()
            if name == "descriptors":
                content = header.getvalue() + bytes(1000)
            archive.writestr(f"{name}.npy", content)


def _cover_arrays_disagree(index_file, path):
    arrays = _arrays(index_file)
    arrays["words"] = arrays["words"][:-5]
    _savez(path, arrays)


def _keypoint_that_is_not_a_number(index_file, path):
    arrays = _arrays(index_file)
    arrays["keypoints"] = arrays["keypoints"].copy()
    arrays["keypoints"][7, 0] = np.nan
    _savez(path, arrays)


BAD_INDEX_FILES = {
    "truncated": (_truncated, "damaged"),
    "future-version": (_future_version, "format version 2 is newer"),
    "unknown-preset": (_unknown_preset, "unknown feature preset 'surf'"),
    "random-bytes": (_random_bytes, "not a cvmatch index"),
    "empty": (_empty, "the file is empty"),
    "directory": (_directory, "is a directory, not an index file"),
    "pickle-running-a-command": (_pickle_that_runs_a_command, "not a cvmatch index"),
    "npz-with-pickled-member": (_npz_with_pickled_member, "not a cvmatch index"),
    "plain-npy": (_plain_npy, "not a cvmatch index"),
    "zip-of-other-files": (_zip_of_other_files, "not a cvmatch index"),
    "member-declaring-30GB": (_member_declaring_30_gigabytes, "memory"),
    "cover-arrays-disagree": (_cover_arrays_disagree, "damaged index"),
    "keypoint-not-a-number": (_keypoint_that_is_not_a_number, "not numbers"),
}


@pytest.mark.parametrize(
    ("make", "says"), BAD_INDEX_FILES.values(), ids=BAD_INDEX_FILES.keys()
)
def test_bad_index_file_is_refused_without_running_anything(
    make, says, sample_index_file, tmp_path
):
    """A damaged, foreign or crafted index file raises IndexFormatError naming the file
    and the problem; nothing inside it is executed."""
    path = tmp_path / "index.cvmatch"
    make(sample_index_file, path)

    with pytest.raises(cvmatch.IndexFormatError) as raised:
        cvmatch.load_index(path)
    assert str(raised.value).startswith(str(path))
    assert says in str(raised.value)
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("command", ["info", "match"])
@pytest.mark.parametrize(
    "make",
    [
        _truncated,
        _future_version,
        _random_bytes,
        _pickle_that_runs_a_command,
        _plain_npy,
        _member_declaring_30_gigabytes,
    ],
    ids=[
        "truncated",
        "future-version",
        "random-bytes",
        "pickle-running-a-command",
        "plain-npy",
        "member-declaring-30GB",
    ],
)
def test_cli_refuses_bad_index_file_in_one_line(
    make, command, sample_index_file, cli, tmp_path
):
    """``cvmatch info`` and ``cvmatch match`` on a bad index file exit 3 with one error
    line naming the file, no traceback, and run nothing from the file."""
    path = tmp_path / "index.cvmatch"
    make(sample_index_file, path)
    photos = [SAMPLE_PHOTOS / "query01.png"] if command == "match" else []

    result = cli(command, path, *photos)

    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {path}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize(
    "command",
    [["info"], ["match", SAMPLE_PHOTOS / "query01.png"], ["remove", "cover001"]],
    ids=["info", "match", "remove"],
)
@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda path: None, "no such index file"),
        (lambda path: path.mkdir(), "is a directory, not an index file"),
    ],
    ids=["missing", "directory"],
)
def test_cli_on_missing_index_file_or_directory_names_it(
    make, says, command, cli, tmp_path
):
    """A missing index file, or a directory given as the index, is bad input (exit
    3, as for any unusable file) reported in one line that names it and says which."""
    path = tmp_path / "nowhere.cvmatch"
    make(path)

    result = cli(command[0], path, *command[1:])

    assert result.exit_code == 3
    assert result.stderr == f"error: {path}: {says}\n"


# --- Interrupted saves ---------------------------------------------------------------


@pytest.fixture
def existing_index_file(sample_catalogue, tmp_path):
    """A small index already on disk, and the answer it gives for query03."""
    entries = [e for e in sample_catalogue if e.book.id in ("cover003", "cover016")]
    index = cvmatch.CoverIndex.build(entries, preset="orb", branching=8)
    path = tmp_path / "books.cvmatch"
    cvmatch.save_index(index, path)
    return path, index.match(SAMPLE_PHOTOS / "query03.png").to_dict()


def _half_written_then(error):
    def savez(handle, **arrays):
        handle.write(b"PK\x03\x04" + bytes(10_000))
        raise error

    return savez


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), cvmatch.IndexStateError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
    ids=["disk-full", "interrupted"],
)
def test_save_failing_half_way_keeps_the_old_index(
    error, raised, existing_index_file, sample_index, monkeypatch
):
    """A save that fails half-way (disk full, Ctrl-C) leaves the existing index file
    byte for byte as it was, and no temporary file."""
    path, _ = existing_index_file
    content = path.read_bytes()
    monkeypatch.setattr(np, "savez", _half_written_then(error))

    with pytest.raises(raised):
        cvmatch.save_index(sample_index, path)

    assert path.read_bytes() == content
    assert sorted(path.parent.iterdir()) == [path]


def test_saving_into_a_missing_folder_says_so(sample_index, tmp_path):
    """A save into a folder that does not exist names that folder and writes nothing."""
    path = tmp_path / "no-such-folder" / "books.cvmatch"

    with pytest.raises(cvmatch.IndexStateError, match="no-such-folder does not exist"):
        cvmatch.save_index(sample_index, path)

    assert list(tmp_path.iterdir()) == []


#: Runs ``cvmatch build`` with numpy.savez replaced by one that writes part of the file
#: and then kills the whole process, as a power cut or the OOM killer would.
_KILLED_DURING_SAVE = """
import os, signal, sys
import numpy as np
from cvmatch.cli import main

def savez(handle, **arrays):
    handle.write(b"PK\\x03\\x04" + bytes(100_000))
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)

np.savez = savez
main(sys.argv[1:], prog_name="cvmatch")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_build_killed_while_saving_keeps_the_old_index(existing_index_file, tmp_path):
    """``cvmatch build -o EXISTING`` killed while writing leaves EXISTING loadable and
    giving the same answer as before."""
    path, answer = existing_index_file
    catalogue = tmp_path / "other.csv"
    catalogue.write_text(
        "id,image,title\n"
        f"cover001,{SAMPLE_COVERS / 'covers' / 'cover001.png'},Next\n"
        f"cover004,{SAMPLE_COVERS / 'covers' / 'cover004.png'},State of Fear\n",
        encoding="utf-8",
    )

    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_DURING_SAVE,
            "build",
            str(catalogue),
            "-o",
            str(path),
            "--preset",
            "orb",
            "--branching",
            "8",
            "--jobs",
            "1",
        ],
        capture_output=True,
        timeout=120,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    index = cvmatch.load_index(path)
    assert index.match(SAMPLE_PHOTOS / "query03.png").to_dict() == answer
    # A killed process cannot remove its temporary file; it is at least hidden.
    leftovers = [p.name for p in tmp_path.iterdir() if p not in (path, catalogue)]
    assert all(name.startswith(f".{path.name}.") for name in leftovers)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_saved_index_gets_ordinary_file_permissions(
    existing_index_file, sample_index, tmp_path
):
    """A new index file is readable by others as the umask allows, like any file the
    user writes; replacing an index keeps the mode the old file had."""
    umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.npz"
        cvmatch.save_index(sample_index, fresh)
        assert fresh.stat().st_mode & 0o777 == 0o644

        path, _ = existing_index_file
        path.chmod(0o640)
        cvmatch.save_index(sample_index, path)
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)
