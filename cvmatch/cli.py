"""The ``cvmatch`` command: build, inspect and query a cover index.

The exit codes are listed in ``cvmatch --help`` (all of them) and in each command's
``--help`` (those it can end with); the README's table holds the same codes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from pathlib import Path

import click

from . import __version__, tuning
from .catalogue import read_catalogue
from .errors import CvmatchError
from .features import PRESETS
from .images import load_image
from .matcher import CoverIndex, highest_seed
from .storage import load_index, save_index

EXIT_MATCH = 0
EXIT_NO_MATCH = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_INTERNAL = 4
#: Ended by Ctrl-C, or because what read the output closed it: the codes a shell gives
#: a program that SIGINT or SIGPIPE ended (128 + the signal's number).
EXIT_INTERRUPTED = 130
EXIT_OUTPUT_CLOSED = 141

#: Longest side of the picture written by ``match --draw``.
DRAW_MAX_SIDE = 1600

#: Largest ``build --branching``: a vocabulary of up to a million words.
MAX_BRANCHING = 1024


def _exit_codes(*meanings: tuple[int, str]) -> str:
    """The "Exit codes:" list of a ``--help``, wrapped here (click leaves it as is)."""
    lines = ["\b", "Exit codes:"]
    for code, meaning in meanings:
        first, *rest = textwrap.wrap(meaning, width=66)
        lines.append(f"  {code:<3}  {first}")
        lines.extend(f"       {line}" for line in rest)
    return "\n".join(lines)


_USAGE_ERROR = (EXIT_USAGE, "usage error (an unknown option, a value out of range...)")
_INTERNAL_ERROR = (EXIT_INTERNAL, "internal error (a bug: please report it)")

EXIT_CODES = _exit_codes(
    (EXIT_MATCH, "every photo was recognised, or the command succeeded"),
    (EXIT_NO_MATCH, "at least one photo matched no catalogue book"),
    (EXIT_USAGE, "usage error, or no command given (this help is shown)"),
    (
        EXIT_BAD_INPUT,
        "bad input: a photo, catalogue or index file cannot be used, an output "
        "cannot be written, or a book id given to add or remove is already or not "
        "there",
    ),
    _INTERNAL_ERROR,
    (EXIT_INTERRUPTED, "interrupted with Ctrl-C"),
    (EXIT_OUTPUT_CLOSED, "what read the output went away ('cvmatch ... | head')"),
)
MATCH_EXIT_CODES = _exit_codes(
    (EXIT_MATCH, "every photo was recognised"),
    (EXIT_NO_MATCH, "at least one photo matched no catalogue book"),
    _USAGE_ERROR,
    (
        EXIT_BAD_INPUT,
        "bad input: a photo or the index file cannot be used, or the --draw "
        "picture cannot be written or would replace the photo",
    ),
    _INTERNAL_ERROR,
)
BUILD_EXIT_CODES = _exit_codes(
    (EXIT_MATCH, "the index was written"),
    _USAGE_ERROR,
    (
        EXIT_BAD_INPUT,
        "bad input: the catalogue cannot be used, none of its covers can be "
        "indexed, or the index file cannot be written or would replace an input",
    ),
    _INTERNAL_ERROR,
)
INFO_EXIT_CODES = _exit_codes(
    (EXIT_MATCH, "the index was described"),
    _USAGE_ERROR,
    (EXIT_BAD_INPUT, "bad input: the index file cannot be used"),
    _INTERNAL_ERROR,
)
ADD_EXIT_CODES = _exit_codes(
    (EXIT_MATCH, "the books were added"),
    _USAGE_ERROR,
    (
        EXIT_BAD_INPUT,
        "bad input: the index file or the catalogue cannot be used, a book id is "
        "already in the index, or the index file cannot be written",
    ),
    _INTERNAL_ERROR,
)
REMOVE_EXIT_CODES = _exit_codes(
    (EXIT_MATCH, "the books were removed"),
    _USAGE_ERROR,
    (
        EXIT_BAD_INPUT,
        "bad input: the index file cannot be used or written, or a book id is not "
        "in the index",
    ),
    _INTERNAL_ERROR,
)


#: What click (8.2 and newer) raises for a group called with no command: its message
#: is the whole help text, which is shown as help rather than as an error line.
_NoArgsIsHelp = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _whole_numbers(low: int, high: int) -> click.IntRange:
    numbers = click.IntRange(low, high)
    numbers.name = "whole number"  # click would say "not a valid integer range"
    return numbers


class _ProcessCount(click.ParamType):
    """``--jobs``: -1 for one process per core, or a positive number of processes."""

    name = "-1 or a positive number"

    def convert(self, value, param, ctx):
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number != -1 and number < 1:
            self.fail(
                f"{value!r} is not -1 (one process per core) or a positive number",
                param,
                ctx,
            )
        return number


class _BadInput(click.ClickException):
    """Bad input that the command line itself finds, such as an output file that
    cannot be written: one line, and the exit code of bad input."""

    exit_code = EXIT_BAD_INPUT


class _OneLineErrors(click.Group):
    """Turns cvmatch errors into one line on stderr and the documented exit code."""

    def main(self, args=None, prog_name=None, **extra):
        # Click's own report of a wrong command line is the usage text, a hint and
        # the error on separate lines; cvmatch promises one line, so it reports
        # click's errors itself and exits as click would.
        extra.pop("standalone_mode", None)
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except _NoArgsIsHelp as error:
            try:
                click.echo(error.ctx.get_help())
                code = error.exit_code
            except BrokenPipeError:
                _discard_stdout()
                code = EXIT_OUTPUT_CLOSED
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx else "cvmatch"
            click.echo(
                f"error: {error.format_message()} (see '{command} --help')", err=True
            )
            code = error.exit_code
        except click.ClickException as error:
            click.echo(f"error: {error.format_message()}", err=True)
            code = error.exit_code
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            code = EXIT_NO_MATCH
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CvmatchError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # What reads the output went away (``cvmatch match ... | head``): stop
            # quietly, as other command-line tools do, and keep Python from failing
            # again when it flushes standard output on the way out.
            _discard_stdout()
            ctx.exit(EXIT_OUTPUT_CLOSED)
        except Exception as error:  # the promise is: never a traceback
            click.echo(f"internal error: {type(error).__name__}: {error}", err=True)
            ctx.exit(EXIT_INTERNAL)


def _discard_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # standard output is not a file (a test runner)
        pass


class _WarningFormatter(logging.Formatter):
    def format(self, record):
        return f"{record.levelname.lower()}: {record.getMessage()}"


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes each record to ``sys.stderr`` as it is at that moment, so a command run
    again in the same process (as test runners do) does not write to an old stream.

    While a progress bar is drawn, records are held in :attr:`held` and written once
    it is finished, so that they do not break the bar's line."""

    held: list | None = None

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass

    def emit(self, record):
        if self.held is not None:
            self.held.append(record)
        else:
            super().emit(record)


def _setup_output(verbose: bool) -> None:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    logger = logging.getLogger("cvmatch")
    if not any(getattr(h, "_cvmatch_cli", False) for h in logger.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(_WarningFormatter())
        handler._cvmatch_cli = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


@click.group(cls=_OneLineErrors, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="cvmatch")
@click.option("-v", "--verbose", is_flag=True, help="Report more of what is done.")
def main(verbose):
    """Recognise books from phone photos of their covers."""
    _setup_output(verbose)


def _be_verbose(ctx, param, verbose: bool) -> None:
    if verbose:
        logging.getLogger("cvmatch").setLevel(logging.INFO)


# Also taken after the command's name ('cvmatch match -v ...'), where users put it.
_verbose_option = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    expose_value=False,
    callback=_be_verbose,
    help="Report more of what is done.",
)


_jobs_option = click.option(
    "--jobs",
    type=_ProcessCount(),
    metavar="N",
    default=-1,
    show_default=True,
    help="Processes for feature extraction (-1: one per core).",
)

# Paths are checked by cvmatch, not by click: a directory given for a file is bad input
# (exit 3) with a message that says so, like a missing or damaged file.
_index_argument = click.argument(
    "index_file", metavar="INDEX", type=click.Path(path_type=Path)
)


class _Progress:
    """A progress bar over the cover images read, called with the number done.

    Once the last image is read the bar is closed and ``then`` is printed on a line
    of its own: the step that follows (learning the vocabulary) can take longer than
    reading, and a full bar left on screen would look hung. Log records are held
    while the bar is drawn, so that they do not break its line, and written when it
    closes.
    """

    def __init__(self, total: int, label: str, then: str):
        self.total, self.then = total, then
        # No time estimate: covers come back from the worker processes in bursts,
        # and the first ones only after the workers start, so it was far too high.
        self.bar = click.progressbar(
            length=total, label=label, file=sys.stderr, show_pos=True
        )
        self.handlers = [
            handler
            for handler in logging.getLogger("cvmatch").handlers
            if isinstance(handler, _CurrentStderrHandler)
        ]
        self.open = False

    def __enter__(self):
        for handler in self.handlers:
            handler.held = []
        self.bar.__enter__()
        self.open = True
        return self

    def __call__(self, done: int) -> None:
        self.bar.update(done - self.bar.pos)
        if done >= self.total and self.open:
            self.close()
            click.echo(f"{self.then}...", err=True)

    def close(self) -> None:
        if not self.open:
            return
        self.open = False
        self.bar.__exit__(None, None, None)
        for handler in self.handlers:
            held, handler.held = handler.held, None
            for record in held:
                handler.emit(record)

    def __exit__(self, *exc_info) -> None:
        self.close()


def _count_images(catalogue) -> int:
    return sum(len(entry.images) for entry in catalogue)


@main.command(epilog=BUILD_EXIT_CODES)
@click.argument("catalogue", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Index file to write (replaced atomically if it exists).",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="orb",
    show_default=True,
    help="Local features: orb (matches in about 60 % of rootsift's time) or rootsift "
    "(a point more accurate on the benchmark, a larger index).",
)
@click.option(
    "--branching",
    type=_whole_numbers(2, MAX_BRANCHING),
    default=None,
    help="Vocabulary tree branching (up to branching^2 visual words); "
    "by default chosen from the catalogue's size.",
)
@click.option(
    "--seed",
    type=_whole_numbers(0, highest_seed(MAX_BRANCHING)),
    default=0,
    show_default=True,
    help="Vocabulary seed.",
)
@_jobs_option
@_verbose_option
def build(catalogue, output, preset, branching, seed, jobs):
    """Build an index from a CATALOGUE CSV (columns id, image, title, ...)."""
    _check_output(output, "an index file", "-o")
    _refuse_overwriting(output, [catalogue], "the catalogue", "-o")
    entries = read_catalogue(catalogue)
    covers = [image for entry in entries for image in entry.images]
    _refuse_overwriting(output, covers, "a cover image of the catalogue", "-o")
    then = "Learning the visual words and indexing"
    with _Progress(len(covers), "Reading covers", then) as progress:
        index = CoverIndex.build(
            entries,
            preset=preset,
            branching=branching,
            seed=seed,
            n_jobs=jobs,
            progress=progress,
        )
    save_index(index, output)
    click.echo(
        f"indexed {_count(len(index.covers), 'cover')} of "
        f"{_count(len(index.books), 'book')} "
        f"({_count(index.vocabulary.n_words, 'visual word')}, {preset}) into {output}"
    )


@main.command(epilog=MATCH_EXIT_CODES)
@_index_argument
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.option(
    "--top",
    type=_whole_numbers(0, 100),
    default=0,
    show_default=True,
    help="Also show this many runners-up.",
)
@click.option(
    "--draw",
    type=click.Path(path_type=Path),
    help="Write the photo with the recognised cover outlined (one photo only; "
    "with no match, the photo as it is).",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 1),
    default=None,
    help=f"Report no match below this confidence [default: {tuning.MIN_CONFIDENCE}].",
)
@_verbose_option
def match(index_file, photos, as_json, top, draw, min_confidence):
    """Recognise the book in each PHOTO using the INDEX."""
    if draw and len(photos) != 1:
        raise click.UsageError("--draw takes exactly one photo")
    if draw:
        _check_output(draw, "a picture file", "--draw")
        _check_picture_format(draw)
        _refuse_overwriting(draw, photos, "the photo", "--draw")
    index = load_index(index_file)
    worst, reports = EXIT_MATCH, []
    for photo in photos:
        try:
            result = index.match(photo, top=max(top, 1), min_confidence=min_confidence)
        except CvmatchError as error:
            worst = EXIT_BAD_INPUT
            reports.append({"photo": str(photo), "error": str(error)})
            if not as_json:
                click.echo(f"error: {error}", err=True)
            continue
        if not result.matched:
            worst = max(worst, EXIT_NO_MATCH)
        report = result.to_dict()
        report["runners_up"] = report["runners_up"][:top]
        reports.append(report)
        if not as_json:
            click.echo(_describe_result(result, top))
        if draw:
            _draw(photo, result, draw)
    if as_json:
        click.echo(json.dumps(reports, ensure_ascii=False, indent=2))
    sys.exit(worst)


def _check_output(path: Path, kind: str, option: str) -> None:
    """Refuse, before any work is done, an output path that cannot be written."""
    if path.is_dir():
        raise _BadInput(f"{path}: is a directory, not {kind}")
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise _BadInput(
            f"{path}: {folder} is not a folder; give {option} a path in a folder"
        )
    if not folder.exists():
        raise _BadInput(
            f"{path}: the folder {folder} does not exist; create it, or give "
            f"{option} a path in an existing folder"
        )


def _check_picture_format(path: Path) -> None:
    from PIL import Image

    writable = {
        extension
        for extension, picture_format in Image.registered_extensions().items()
        if picture_format in Image.SAVE
    }
    if path.suffix.lower() not in writable:
        raise _BadInput(
            f"{path}: not the name of a picture cvmatch can write; end the --draw "
            "file name with .png or .jpg"
        )


def _refuse_overwriting(output: Path, inputs, what: str, option: str) -> None:
    for source in inputs:
        if _same_file(output, Path(source)):
            raise _BadInput(
                f"{output}: is {what}, which {option} would overwrite; give {option} "
                "another file name"
            )


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return first.resolve() == second.resolve()


def _describe_result(result, top) -> str:
    if result.matched:
        book = result.book
        author = f" by {book.author}" if book.author else ""
        lines = [f"{result.photo}: {book.title}{author}"]
        if book.goodreads_url:
            lines.append(f"  {book.goodreads_url}")
        lines.append(
            f"  confidence {result.confidence:.2f}, {_count(result.inliers, 'inlier')}"
        )
    else:
        lines = [f"{result.photo}: no match ({result.reason})"]
    for candidate in result.runners_up[:top]:
        fit = (
            _count(candidate.inliers, "inlier")
            if candidate.inliers
            else "no verified fit"
        )
        lines.append(
            f"  runner-up: {candidate.book.title} ({fit}, score {candidate.score:.3f})"
        )
    return "\n".join(lines)


def _draw(photo, result, output: Path) -> None:
    import cv2
    import numpy as np
    from PIL import Image

    loaded = load_image(photo, DRAW_MAX_SIDE, colour=True)
    canvas = np.array(loaded.pixels)  # a writable copy: decoded pixels may be read-only
    if result.corners:
        outline = (np.array(result.corners) * loaded.scale).round().astype(np.int32)
        thickness = max(2, round(max(canvas.shape[:2]) / 300))
        cv2.polylines(canvas, [outline], True, (0, 220, 0), thickness, cv2.LINE_AA)
    try:
        Image.fromarray(canvas).save(output)
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise CvmatchError(f"{output}: cannot write the picture ({reason})") from None


@main.command(epilog=INFO_EXIT_CODES)
@_index_argument
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@_verbose_option
def info(index_file, as_json):
    """Describe an INDEX: preset, vocabulary, books and covers."""
    index = load_index(index_file)
    summary = {
        "index": str(index_file),
        "size_bytes": index_file.stat().st_size,
        "preset": index.preset.name,
        "visual_words": index.vocabulary.n_words,
        "books": len(index.books),
        "covers": len(index.covers),
        "descriptors": sum(len(cover.features) for cover in index.covers),
        "skipped": [
            {"image": image, "reason": reason} for image, reason in index.skipped
        ],
    }
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    for key, value in summary.items():
        if key != "skipped":
            click.echo(f"{key.replace('_', ' ')}: {value}")
    click.echo(f"skipped images: {len(index.skipped)}")
    for image, reason in index.skipped:
        click.echo(f"  {image}: {reason}")


@main.command(epilog=ADD_EXIT_CODES)
@_index_argument
@click.argument("catalogue", type=click.Path(path_type=Path))
@_jobs_option
@_verbose_option
def add(index_file, catalogue, jobs):
    """Add the books of a CATALOGUE CSV to an INDEX (same vocabulary)."""
    index = load_index(index_file)
    entries = read_catalogue(catalogue)
    total = _count_images(entries)
    with _Progress(total, "Reading covers", "Indexing the covers") as progress:
        added = index.add(entries, n_jobs=jobs, progress=progress)
    save_index(index, index_file)
    click.echo(
        f"added {_count(added, 'cover')}; "
        f"the index now holds {_count(len(index.books), 'book')}"
    )


@main.command(epilog=REMOVE_EXIT_CODES)
@_index_argument
@click.argument("book_ids", metavar="ID...", nargs=-1, required=True)
@_verbose_option
def remove(index_file, book_ids):
    """Remove books from an INDEX by their catalogue ids."""
    index = load_index(index_file)
    removed = sum(index.remove(book_id) for book_id in book_ids)
    save_index(index, index_file)
    click.echo(
        f"removed {_count(len(book_ids), 'book')} ({_count(removed, 'cover')}); "
        f"{_count(len(index.books), 'book')} remain"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
