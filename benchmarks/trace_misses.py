"""Why cvmatch misses the photos it misses: retrieval, verification or the decision.

For a catalogue of a given size (built as ``benchmarks.scale`` builds it, with the same
seed and cover order as ``run_all`` and ``scale``), every photo whose own book cvmatch
does not name is traced:

- *retrieval*: the right cover verifies against the photo, but its TF-IDF score ranks
  it below the shortlist (``tuning.CANDIDATES`` covers), so it is never verified;
- *verification*: the right cover does not verify against the photo even when checked
  directly (too few inliers, or inliers that do not spread over the cover);
- *decision*: the right cover is shortlisted and verifies, yet no title or another
  title is given (it was not reached among those verified, or another cover fitted
  about as well and confidence fell below the threshold).

Run::

    python -m benchmarks.trace_misses --size 10000 --threads 2

It prints one line per missed photo and a count by cause. It reads cvmatch's index
from the inside (its vocabulary, inverted index and covers), which is why it lives
here and not in the library.
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
from pathlib import Path

import numpy as np

import cvmatch
from benchmarks.bench_cvmatch import add_common_arguments, benchmark_index
from benchmarks.protocol import PHOTO_ROLE
from cvmatch import tuning
from cvmatch.features import extract_features, matching_descriptors
from cvmatch.images import load_image
from cvmatch.verification import verify

logger = logging.getLogger("cvmatch.benchmarks")


def trace(index: cvmatch.CoverIndex, photo: Path, book_id: str, result) -> dict:
    """Where the right book's best cover stands for ``photo``, and why ``result``,
    cvmatch's answer for it, missed that book.

    Returns
    -------
    dict
        ``outcome`` (what cvmatch answered), ``rank`` (1-based TF-IDF rank of the
        right book's best-ranked cover), ``inliers`` (the most any of its covers gives
        when verified directly) and ``cause``.
    """
    if result.matched:
        outcome = f"named {result.book.id!r}"
    else:
        outcome = f"no title ({result.reason})"
    loaded = load_image(photo, tuning.PHOTO_MAX_SIDE)
    features = extract_features(loaded.pixels, index.preset, tuning.PHOTO_FEATURES)
    scores = index._inverted.scores(index.vocabulary.quantise(features.descriptors))
    positions = [i for i, c in enumerate(index.covers) if c.book_id == book_id]
    rank = 1 + int(np.sum(scores > max(scores[i] for i in positions)))
    photo_descriptors = matching_descriptors(features.descriptors, index.preset)
    inliers = max(
        verify(
            features,
            photo_descriptors,
            index.covers[i].features,
            matching_descriptors(index.covers[i].features.descriptors, index.preset),
            index.preset,
            tuning.MIN_INLIERS,
        ).inliers
        for i in positions
    )
    if inliers < tuning.MIN_INLIERS:
        cause = "verification"
    elif rank > tuning.CANDIDATES:
        cause = "retrieval"
    else:
        cause = "decision"
    return {"outcome": outcome, "rank": rank, "inliers": inliers, "cause": cause}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.run_all import limit_threads

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.trace_misses", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", type=int, default=1702, help="catalogue covers")
    parser.add_argument("--preset", default="orb", choices=["orb", "rootsift"])
    add_common_arguments(parser)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    limit_threads(options.threads)

    index, query_set = benchmark_index(
        options.data_dir, options.size, options.preset, options.threads
    )

    photos = [entry for entry in query_set if entry.role == PHOTO_ROLE]
    causes = collections.Counter()
    for entry in photos:
        result = index.match(entry.path, top=0)
        if result.matched and result.book.id == entry.object_id:
            continue
        found = trace(index, entry.path, entry.object_id, result)
        causes[found["cause"]] += 1
        name = entry.path.relative_to(options.data_dir)
        print(
            f"{name}: {found['outcome']}; right cover ranks {found['rank']} by "
            f"TF-IDF, {found['inliers']} inliers checked directly -> {found['cause']}",
            flush=True,
        )
    missed = sum(causes.values())
    print(
        f"{options.size} covers, preset {options.preset}: "
        f"{len(photos) - missed} of {len(photos)} photos named right; {missed} missed "
        f"({', '.join(f'{n} {cause}' for cause, n in causes.most_common()) or 'none'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
