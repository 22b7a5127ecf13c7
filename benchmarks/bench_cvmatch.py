"""cvmatch measured on the shared data set, as a library user would run it.

Indexes every ``cover`` of ``manifest.csv``, queries every ``photo``,
``photo_unknown`` and ``distractor``, and reports what cvmatch itself decides: the
share of photos given their own title (top-1), titles given to photos of other books,
titles given to images that are in no catalogue, query time including decoding (p50,
p95), build time, and index size on disk and in memory::

    python -m benchmarks.bench_cvmatch --preset orb

With ``--index FILE`` the built index is saved there, and a later run with the same
option loads it instead of building: the build is the slow part, so the query timings
can be taken again, for instance at a moment when nothing else runs on the machine.
The memory figure is then the growth over loading the file.

:class:`CvmatchMethod` also puts cvmatch into the comparison of
``benchmarks/run_all.py`` through the shared protocol.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cvmatch
from benchmarks.protocol import (
    NEGATIVE_ROLES,
    PHOTO_ROLE,
    Entry,
    _percentile,
    covers,
    load_manifest,
    queries,
)
from benchmarks.scale import catalogue_of_size

logger = logging.getLogger("cvmatch.benchmarks")

DEFAULT_DATA = Path(
    os.environ.get(
        "CVMATCH_DATA",
        Path(__file__).resolve().parent.parent.parent / "shared" / "data",
    )
)


def catalogue_of(cover_entries: list[Entry]) -> list[cvmatch.CatalogueEntry]:
    """Turn manifest covers into a cvmatch catalogue, one book per object id."""
    images, first = defaultdict(list), {}
    for entry in cover_entries:
        images[entry.object_id].append(entry.path)
        first.setdefault(entry.object_id, entry)
    return [
        cvmatch.CatalogueEntry(
            book=cvmatch.Book(
                id=object_id,
                title=entry.title or object_id,
                author=entry.author,
                isbn=entry.isbn,
                goodreads_id=entry.goodreads_id,
            ),
            images=tuple(images[object_id]),
        )
        for object_id, entry in first.items()
    ]


class CvmatchMethod:
    """cvmatch behind the shared benchmark protocol.

    A named book comes first with 1 + its confidence as score, so that every book
    cvmatch names ranks above every answer it declined and a threshold of 1 reproduces
    its own decision. When cvmatch names no book, the best runner-up gets the
    confidence that was too low (below 1), so the protocol's threshold sweep can also
    look below cvmatch's own rule; the other runners-up score 0.
    """

    def __init__(self, preset: str = "orb", n_jobs: int = -1):
        self.preset = preset
        self.n_jobs = n_jobs
        self.name = f"cvmatch-{preset}"
        self.notes = f"cvmatch {cvmatch.__version__}, preset {preset}"
        self.index = None

    def build(self, cover_entries: list[Entry]) -> None:
        self.index = cvmatch.CoverIndex.build(
            catalogue_of(cover_entries), preset=self.preset, n_jobs=self.n_jobs
        )

    def query(self, path: Path) -> list[tuple[str, float]]:
        result = self.index.match(path, top=5)
        ranking = [(c.book.id, 0.0) for c in result.runners_up]
        if result.matched:
            return [(result.book.id, 1.0 + result.confidence), *ranking]
        if ranking:
            ranking[0] = (ranking[0][0], result.confidence)
        return ranking

    def size_on_disk(self) -> int:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "index.cvmatch"
            cvmatch.save_index(self.index, path)
            return path.stat().st_size


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the scripts that build :func:`benchmark_index`."""
    parser.add_argument(
        "--threads", type=int, default=1, help="cores, as run_all's --threads"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA,
        help="the shared data set (CVMATCH_DATA)",
    )


def benchmark_index(data_dir: Path, size: int, preset: str, threads: int):
    """The index that ``run_all`` and ``scale`` measure at ``size``, and its queries.

    Same catalogue, same cover order (that of ``protocol.evaluate``) and same seed,
    so the same vocabulary and the same answers.
    """
    catalogue, query_set = catalogue_of_size(load_manifest(data_dir), size)
    shuffled = random.Random(0).sample(list(catalogue), len(catalogue))
    started = time.perf_counter()
    index = cvmatch.CoverIndex.build(
        catalogue_of(shuffled), preset=preset, n_jobs=threads
    )
    logger.info(
        "built %d covers in %.0f s", len(index.covers), time.perf_counter() - started
    )
    return index, query_set


def _photos_without_their_book(index, catalogue, photos):
    """Remove each photo's book in turn, query the photo, put the book back.

    Returns the photos that were still given a title, with the result: every one is
    a wrong title, since the book they show is not in the index at that moment.
    """
    entries = {entry.book.id: entry for entry in catalogue}
    titled = []
    for entry, _, _ in photos:
        index.remove(entry.object_id)
        result = index.match(entry.path)
        index.add([entries[entry.object_id]])
        if result.matched:
            titled.append((entry, result))
    return titled


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def run(data_dir: Path, preset: str, n_jobs: int, index_path=None) -> str:
    """Build (or load), query everything and return the figures as Markdown."""
    entries = load_manifest(data_dir)
    cover_entries, query_entries = covers(entries), queries(entries)
    method = CvmatchMethod(preset, n_jobs)

    rss_before = _rss_mb()
    started = time.perf_counter()
    loaded = index_path is not None and Path(index_path).exists()
    if loaded:
        method.index = cvmatch.load_index(index_path)
        if method.index.preset.name != preset:
            raise SystemExit(f"{index_path} holds a {method.index.preset.name} index")
    else:
        method.build(cover_entries)
    build_seconds = time.perf_counter() - started
    index_mb = _rss_mb() - rss_before
    if index_path is not None and not loaded:
        cvmatch.save_index(method.index, index_path)
    disk_mb = method.size_on_disk() / 2**20

    outcomes = []
    for entry in query_entries:
        started = time.perf_counter()
        result = method.index.match(entry.path)
        seconds = time.perf_counter() - started
        outcomes.append((entry, result, seconds))

    photos = [o for o in outcomes if o[0].role == PHOTO_ROLE]
    orphans = _photos_without_their_book(
        method.index, catalogue_of(cover_entries), photos
    )
    negatives = [o for o in outcomes if o[0].role in NEGATIVE_ROLES]
    right = [o for o in photos if o[1].matched and o[1].book.id == o[0].object_id]
    wrong = [o for o in photos if o[1].matched and o[1].book.id != o[0].object_id]
    titled = [o for o in negatives if o[1].matched]
    same_book = [o for o in titled if o[1].book.title == o[0].title]
    times = [o[2] * 1000 for o in outcomes]

    by_group = defaultdict(list)
    for entry, result, _ in photos:
        hit = result.matched and result.book.id == entry.object_id
        by_group[f"source {entry.source}"].append(hit)
        if entry.camera:
            by_group[f"camera {entry.camera}"].append(hit)

    lines = [
        f"| measure | cvmatch {preset} |",
        "| --- | --- |",
        f"| covers indexed | {len(method.index.covers)} of {len(cover_entries)} "
        f"({len(method.index.skipped)} skipped) |",
        f"| visual words | {method.index.vocabulary.n_words} |",
        f"| top-1 on photos | {len(right)}/{len(photos)} "
        f"({100 * len(right) / len(photos):.1f} %) |",
        f"| photos given a wrong title | {len(wrong)} |",
        f"| photo_unknown + distractor given a title | {len(titled)}/{len(negatives)}"
        f" (of which the very book the image shows: {len(same_book)}) |",
        f"| query p50 / p95 (decoding included) | {_percentile(times, 0.5):.0f} ms /"
        f" {_percentile(times, 0.95):.0f} ms |",
        f"| {'load' if loaded else 'build'} time | {build_seconds:.0f} s |",
        f"| index on disk | {disk_mb:.1f} MB |",
        f"| index in memory (RSS growth over the {'load' if loaded else 'build'}) "
        f"| {index_mb:.0f} MB |",
    ]
    lines.append(
        f"| photos whose own book was removed, given a title | {len(orphans)}/"
        f"{len(photos)} |"
    )
    for group in sorted(by_group):
        hits = by_group[group]
        lines.append(f"| top-1, {group} | {sum(hits)}/{len(hits)} |")
    misses = [o for o in photos if o not in right]
    if misses:
        lines += ["", "Photos not given their own title:", ""]
        for entry, result, _ in misses:
            answer = (
                result.book.title if result.matched else f"no match ({result.reason})"
            )
            lines.append(f"- `{entry.path.relative_to(data_dir)}`: {answer}")
    if orphans:
        lines += ["", "Photos given a title after their own book was removed:", ""]
        for entry, result in orphans:
            lines.append(
                f"- `{entry.path.relative_to(data_dir)}`: {result.book.title}, "
                f"{result.inliers} inliers"
            )
    if titled:
        lines += ["", "Images outside the catalogue that were given a title:", ""]
        for entry, result, _ in titled:
            lines.append(
                f"- `{entry.path.relative_to(data_dir)}` ({entry.role}, shows "
                f"{entry.title or 'no book'}): {result.book.title}, "
                f"{result.inliers} inliers"
            )
    return "\n".join(lines)


def machine() -> str:
    """One line saying what the figures were measured on."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, OpenCV {cvmatch.images.cv2.__version__}"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_cvmatch", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--preset", default="orb", choices=sorted(cvmatch.PRESETS))
    parser.add_argument(
        "--jobs",
        type=int,
        default=-1,
        help="processes reading the covers (default -1: one per core)",
    )
    parser.add_argument(
        "--index", type=Path, help="load this index if it exists, else save it here"
    )
    arguments = parser.parse_args(argv)
    print(f"Machine: {machine()}\n")
    print(run(arguments.data_dir, arguments.preset, arguments.jobs, arguments.index))


if __name__ == "__main__":
    main()
