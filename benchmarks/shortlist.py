"""How cvmatch's accuracy and query time move with the length of its shortlist.

cvmatch verifies only the covers that its TF-IDF scores put first: ``tuning.CANDIDATES``
of them are checked cheaply for word geometry, and at most ``tuning.MAX_VERIFIED`` of
those get a full RANSAC verification. ``benchmarks.trace_misses`` shows that in a large
catalogue most missed photos have a right cover that verifies but ranks below the
shortlist. This script queries one index with several settings of the two, on the same
photos and negatives, and prints a Markdown table::

    python -m benchmarks.shortlist --size 10000 --settings 50:50,400:50 --threads 2

Each setting is ``CANDIDATES:MAX_VERIFIED``. ``--index FILE`` saves the index built
for the size, or loads it when the file exists, so that other settings can be tried
without building again. Query times are medians and 95th percentiles over all queries
of a setting, decoding included.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import cvmatch
from benchmarks.bench_cvmatch import add_common_arguments, benchmark_index
from benchmarks.protocol import PHOTO_ROLE, load_manifest
from benchmarks.scale import catalogue_of_size
from cvmatch import tuning

logger = logging.getLogger("cvmatch.benchmarks")


def _settings(text: str) -> list[tuple[int, int]]:
    pairs = []
    for part in text.split(","):
        shortlist, _, verified = part.partition(":")
        pairs.append((int(shortlist), int(verified or shortlist)))
    return pairs


def measure(index, query_set, shortlist: int, verified: int) -> dict:
    """Query every image of ``query_set`` with one shortlist setting."""
    tuning.CANDIDATES, tuning.MAX_VERIFIED = shortlist, verified
    right = wrong = false = 0
    times = []
    for entry in query_set:
        started = time.perf_counter()
        result = index.match(entry.path, top=0)
        times.append(time.perf_counter() - started)
        if entry.role != PHOTO_ROLE:
            false += result.matched
        elif result.matched:
            right += result.book.id == entry.object_id
            wrong += result.book.id != entry.object_id
    times.sort()
    photos = sum(entry.role == PHOTO_ROLE for entry in query_set)
    return {
        "right": right,
        "photos": photos,
        "wrong": wrong,
        "false": false,
        "negatives": len(query_set) - photos,
        "p50_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
    }


def main(argv: list[str] | None = None) -> int:
    from benchmarks.run_all import limit_threads

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.shortlist", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", type=int, default=10000, help="catalogue covers")
    parser.add_argument(
        "--settings",
        default="50:50,100:100,200:200,400:400",
        help="comma-separated CANDIDATES:MAX_VERIFIED pairs",
    )
    parser.add_argument("--index", type=Path, help="index file to save or load")
    add_common_arguments(parser)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    limit_threads(options.threads)
    try:
        settings = _settings(options.settings)
    except ValueError:
        parser.error(
            f"--settings takes pairs such as 50:50,400:50, not {options.settings!r}"
        )

    if options.index and options.index.exists():
        index = cvmatch.load_index(options.index)
        _, query_set = catalogue_of_size(load_manifest(options.data_dir), options.size)
    else:
        index, query_set = benchmark_index(
            options.data_dir, options.size, "orb", options.threads
        )
        if options.index:
            cvmatch.save_index(index, options.index)

    print(f"{len(index.covers)} covers, preset {index.preset.name}\n")
    print(
        "| shortlist | verified at most | named right | wrong | negatives titled "
        "| query p50 ms | query p95 ms |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for shortlist, verified in settings:
        row = measure(index, query_set, shortlist, verified)
        print(
            f"| {shortlist} | {verified} | {row['right']}/{row['photos']} "
            f"({100 * row['right'] / row['photos']:.1f} %) | {row['wrong']} | "
            f"{row['false']}/{row['negatives']} | {row['p50_ms']:.0f} | "
            f"{row['p95_ms']:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
