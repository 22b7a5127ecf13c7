"""The shared protocol by which every recognition method is measured.

A method is anything with a ``name``, a ``build`` that indexes a list of catalogue
covers and a ``query`` that ranks catalogue object ids for one photo (see
:class:`Method`). :func:`evaluate` runs one method over the covers and queries of
``manifest.csv`` and returns a :class:`Report`; :func:`markdown_table` turns reports
into the tables of a results file.

What is measured, and how:

- *build time*: wall seconds of ``method.build(covers)``, including image decoding.
- *query time*: wall seconds of each ``method.query(path)``, including image decoding,
  reported as the median (p50) and 95th percentile over all queries.
- *index memory*: resident set size (RSS) of the whole process, read with psutil
  before and after ``build``. ``index_rss_mb`` is after minus before; ``build_peak_mb``
  is the highest RSS sampled every few milliseconds during the build, minus before.
  RSS sees what tracemalloc cannot (OpenCV and PyTorch allocate outside the Python
  heap), but it also counts freed memory that the allocator kept and libraries loaded
  for the first time during ``build``: read it as an upper bound.
- *top-1 accuracy* and *top-5 recall*: over the queries of role ``photo``, whether the
  photo's ``object_id`` is first, or among the first five, of the ranking.
- *false titles*: see :class:`Report` for the two operating thresholds.

Two details keep the comparison fair. The catalogue is shuffled (seeded) before it is
built, because the manifest lists the photographed covers first and a method whose
scores tie (pHash distances often do) would otherwise break ties towards the right
answer. And a negative that pictures a catalogue book (a back cover, a flat scan of
the whole wrap, front included) is not a false title when a method names that very
book: such an answer is right, and counting it would set the strict threshold of
every method that finds the book above most true photos.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

logger = logging.getLogger("cvmatch.benchmarks")

PHOTO_ROLE = "photo"
NEGATIVE_ROLES = ("photo_unknown", "distractor")
QUERY_ROLES = (PHOTO_ROLE, *NEGATIVE_ROLES)

# How far down the ranking a correct cover still counts for recall; five is what a
# user can read at a glance on a phone screen.
RECALL_DEPTH = 5

# How often the build's memory is sampled, in seconds. Fine enough to catch a peak
# that lasts a fraction of a second; coarse enough to cost nothing measurable.
RSS_SAMPLING_PERIOD = 0.005

NO_CAMERA = "(none)"


@dataclass(frozen=True)
class Entry:
    """One row of ``manifest.csv``: a cover, a photo or a distractor image.

    Attributes
    ----------
    path : Path
        Absolute path of the image.
    role : str
        ``cover``, ``photo``, ``photo_unknown`` or ``distractor``.
    object_id : str
        Shared by a ``photo`` and the ``cover`` it shows; empty for negatives.
    title, author, isbn, goodreads_id : str
        What is known of the book; any of them may be empty.
    source : str
        The set the image comes from (``smvs_dvd``, ``pyimagesearch``...).
    camera : str
        The device that took a ``photo``; empty when unknown or not a photo.
    """

    path: Path
    role: str
    object_id: str
    title: str = ""
    author: str = ""
    isbn: str = ""
    goodreads_id: str = ""
    source: str = ""
    camera: str = ""


def load_manifest(data_dir: str | Path) -> list[Entry]:
    """Read every row of ``data_dir/manifest.csv``.

    Parameters
    ----------
    data_dir : str or Path
        The folder that holds ``manifest.csv`` and the images it names.

    Returns
    -------
    list of Entry
        In the order of the file, with absolute image paths.

    Examples
    --------
    >>> entries = load_manifest("/work/shared/data")  # doctest: +SKIP
    >>> len(covers(entries)), len(queries(entries))  # doctest: +SKIP
    (1702, 250)
    """
    data_dir = Path(data_dir).resolve()
    with open(data_dir / "manifest.csv", newline="", encoding="utf-8") as manifest:
        rows = list(csv.DictReader(manifest))
    return [
        Entry(
            path=data_dir / row["path"],
            role=row["role"],
            object_id=row["object_id"],
            title=row["title"],
            author=row["author"],
            isbn=row["isbn"],
            goodreads_id=row["goodreads_id"],
            source=row["source"],
            camera=row["camera"],
        )
        for row in rows
    ]


def covers(entries: Iterable[Entry]) -> list[Entry]:
    """Return the catalogue covers among ``entries``."""
    return [entry for entry in entries if entry.role == "cover"]


def queries(entries: Iterable[Entry]) -> list[Entry]:
    """Return the photos, unknown-book photos and distractors among ``entries``."""
    return [entry for entry in entries if entry.role in QUERY_ROLES]


def subsample(
    catalogue: list[Entry],
    query_set: list[Entry],
    n_photos: int | None = None,
    n_covers: int | None = None,
    seed: int = 0,
) -> tuple[list[Entry], list[Entry]]:
    """Draw a smaller catalogue and query set that still fit each other.

    Every cover shown by a kept photo stays in the catalogue, so a smaller run measures
    the same task; the other covers are drawn at random to reach ``n_covers``. All
    negative queries are kept: there are few of them and they set the thresholds.

    Parameters
    ----------
    catalogue, query_set : list of Entry
        Output of :func:`covers` and :func:`queries`.
    n_photos : int, optional
        How many ``photo`` queries to keep, drawn at random; all when None.
    n_covers : int, optional
        Catalogue size to reach; all covers when None. Never fewer than the covers
        that the kept photos need.
    seed : int
        Seed of the draw, so that two runs measure the same subset.

    Returns
    -------
    catalogue, query_set : list of Entry
    """
    rng = random.Random(seed)
    photos = [entry for entry in query_set if entry.role == PHOTO_ROLE]
    negatives = [entry for entry in query_set if entry.role != PHOTO_ROLE]
    if n_photos is not None and n_photos < len(photos):
        photos = sorted(rng.sample(photos, n_photos), key=photos.index)

    needed_ids = {photo.object_id for photo in photos}
    needed = [cover for cover in catalogue if cover.object_id in needed_ids]
    others = [cover for cover in catalogue if cover.object_id not in needed_ids]
    if n_covers is not None:
        n_others = max(0, min(len(others), n_covers - len(needed)))
        others = rng.sample(others, n_others)
    kept = set(map(id, needed + others))
    return [cover for cover in catalogue if id(cover) in kept], photos + negatives


@runtime_checkable
class Method(Protocol):
    """What a recognition method offers to :func:`evaluate`.

    Attributes
    ----------
    name : str
        Short label used in tables, e.g. ``"brute-force ORB"``.

    Notes
    -----
    Two members are optional and read with ``getattr``: ``size_on_disk()`` returning
    the bytes the built index would take when saved (or None when it cannot be
    saved), and ``notes``, a string printed under the tables (a training budget, a
    preset, a known limit).
    """

    name: str

    def build(self, covers: list[Entry]) -> None:
        """Index the catalogue covers; called once, before any query."""

    def query(self, path: Path) -> list[tuple[str, float]]:
        """Rank catalogue object ids for the image at ``path``.

        Returns ``(object_id, score)`` pairs, best first, at least
        :data:`RECALL_DEPTH` when the catalogue has that many covers. A higher score
        means more confidence. The method decodes the image itself, so decoding is
        part of the measured time.
        """


@dataclass
class QueryOutcome:
    """What one query returned, kept for inspection and for the thresholds."""

    path: str
    role: str
    object_id: str
    source: str
    camera: str
    seconds: float
    ranking: list[tuple[str, float]]
    error: str = ""
    shows: list[str] = field(default_factory=list)

    @property
    def top_id(self) -> str | None:
        return self.ranking[0][0] if self.ranking else None

    @property
    def top_score(self) -> float:
        return self.ranking[0][1] if self.ranking else float("-inf")

    @property
    def names_depicted_book(self) -> bool:
        """Whether a negative's first answer is the catalogue book it pictures."""
        return self.top_id is not None and self.top_id in self.shows


@dataclass
class Report:
    """Everything :func:`evaluate` measured for one method.

    Two operating thresholds turn a ranking into an answer: a query is *accepted*
    when its best score is at or above the threshold, and then the method states the
    first title of its ranking; otherwise it says "not in my catalogue". A *false
    title* is a title stated for a ``photo_unknown`` or ``distractor`` query, unless
    it is the catalogue book that the image pictures (a back cover or a whole wrap of
    it: see the module notes). A *wrong title* is a title stated for a ``photo`` that
    is not the title it shows.

    - The **strict threshold** is the lowest one that states no false title: just
      above the best score of any negative query. ``top1_strict`` is the share of
      photos accepted with the right title there, ``wrong_strict`` the count of photos
      accepted with a wrong one.
    - The **balanced threshold** maximises right photos minus (false titles + wrong
      titles), every mistake weighing as much as one success. ``top1_balanced``,
      ``false_balanced`` and ``wrong_balanced`` are read there.

    Both thresholds are chosen on the very queries they are scored on, with only a
    few dozen negatives: they say what each method's scores can separate at best, not
    what a threshold fixed in advance would achieve.
    """

    name: str
    n_covers: int
    n_photos: int
    n_negatives: int
    build_seconds: float
    query_p50_ms: float
    query_p95_ms: float
    index_rss_mb: float
    build_peak_mb: float
    size_on_disk_mb: float | None
    top1: float
    top5: float
    top1_by_source: dict[str, float]
    top1_by_camera: dict[str, float]
    strict_threshold: float
    top1_strict: float
    wrong_strict: int
    balanced_threshold: float
    top1_balanced: float
    false_balanced: int
    wrong_balanced: int
    query_errors: int
    notes: str = ""
    outcomes: list[QueryOutcome] = field(default_factory=list, repr=False)

    def as_dict(self, with_outcomes: bool = False) -> dict:
        """Return the report as plain data, ready for ``json.dump``."""
        report = dataclasses.asdict(self)
        if not with_outcomes:
            del report["outcomes"]
        return report

    @classmethod
    def from_dict(cls, record: dict) -> Report:
        """Rebuild a report from :meth:`as_dict` output (with or without outcomes)."""
        outcomes = [
            QueryOutcome(
                **{**outcome, "ranking": [tuple(r) for r in outcome["ranking"]]}
            )
            for outcome in record.get("outcomes", [])
        ]
        return cls(**{**record, "outcomes": outcomes})

    def query_paths(self) -> list[str]:
        """The queried files in order; two reports compare only if these agree."""
        return [outcome.path for outcome in self.outcomes]


def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class _PeakRss:
    """Sample the process RSS in a thread while the ``with`` block runs."""

    def __enter__(self) -> _PeakRss:
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(RSS_SAMPLING_PERIOD):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _share(hits: int, total: int) -> float:
    return hits / total if total else float("nan")


def _operating_points(
    photos: list[QueryOutcome], negatives: list[QueryOutcome]
) -> dict[str, float]:
    """Find the strict and balanced thresholds described in :class:`Report`."""
    negatives = [outcome for outcome in negatives if not outcome.names_depicted_book]
    negative_scores = [outcome.top_score for outcome in negatives if outcome.ranking]
    best_negative = max(negative_scores, default=float("-inf"))
    strict = _just_above(best_negative)

    def counts(threshold: float) -> tuple[int, int, int]:
        right = wrong = false = 0
        for outcome in photos:
            if outcome.ranking and outcome.top_score >= threshold:
                if outcome.top_id == outcome.object_id:
                    right += 1
                else:
                    wrong += 1
        for outcome in negatives:
            if outcome.ranking and outcome.top_score >= threshold:
                false += 1
        return right, wrong, false

    candidates = sorted({o.top_score for o in photos + negatives if o.ranking})
    candidates.append(float("inf"))
    net_right = {}
    for threshold in candidates:
        right, wrong, false = counts(threshold)
        net_right[threshold] = right - wrong - false
    balanced = max(candidates, key=net_right.__getitem__)
    right_strict, wrong_strict, _ = counts(strict)
    right_balanced, wrong_balanced, false_balanced = counts(balanced)
    return {
        "strict_threshold": strict,
        "top1_strict": _share(right_strict, len(photos)),
        "wrong_strict": wrong_strict,
        "balanced_threshold": balanced,
        "top1_balanced": _share(right_balanced, len(photos)),
        "false_balanced": false_balanced,
        "wrong_balanced": wrong_balanced,
    }


def _just_above(score: float) -> float:
    import math

    if score == float("-inf"):
        return score
    return math.nextafter(score, float("inf"))


def _top1_by(photos: list[QueryOutcome], key: Callable[[QueryOutcome], str]):
    groups: dict[str, list[bool]] = defaultdict(list)
    for outcome in photos:
        groups[key(outcome)].append(outcome.top_id == outcome.object_id)
    return {
        label: _share(sum(hits), len(hits)) for label, hits in sorted(groups.items())
    }


def _depicted_books(catalogue: list[Entry]) -> Callable[[Entry], list[str]]:
    """For a negative, the catalogue ids whose title is the title it pictures."""
    by_title: dict[str, list[str]] = defaultdict(list)
    for cover in catalogue:
        if cover.title:
            by_title[cover.title.casefold().strip()].append(cover.object_id)

    def shows(entry: Entry) -> list[str]:
        if entry.role == PHOTO_ROLE or not entry.title:
            return []
        return sorted(set(by_title.get(entry.title.casefold().strip(), [])))

    return shows


def evaluate(
    method: Method,
    catalogue: list[Entry],
    query_set: list[Entry],
    progress: Callable[[int, int], None] | None = None,
    seed: int = 0,
) -> Report:
    """Build ``method`` on ``catalogue``, run every query and measure it.

    Parameters
    ----------
    method : Method
        A fresh, unbuilt method.
    catalogue : list of Entry
        The covers to index.
    query_set : list of Entry
        Photos and negatives; photos whose cover is not in ``catalogue`` are scored
        as they come (they can only be wrong), so keep the two consistent, e.g. with
        :func:`subsample`.
    progress : callable, optional
        Called as ``progress(done, total)`` after each query.
    seed : int
        Seed of the order in which the covers are given to ``build``.

    Returns
    -------
    Report
        Timings, memory, accuracy and the two operating thresholds. A query that
        raises is logged, counted in ``query_errors`` and scored as an empty ranking.
    """
    shuffled = random.Random(seed).sample(list(catalogue), len(catalogue))
    shows = _depicted_books(catalogue)
    rss_before = _rss_bytes()
    started = time.perf_counter()
    with _PeakRss() as peak:
        method.build(shuffled)
    build_seconds = time.perf_counter() - started
    rss_after = _rss_bytes()

    outcomes = []
    for done, entry in enumerate(query_set, start=1):
        error = ""
        started = time.perf_counter()
        try:
            ranking = list(method.query(entry.path))
        except Exception as exc:  # a benchmark scores a crash, it does not stop on one
            logger.warning("%s failed on %s: %s", method.name, entry.path, exc)
            ranking, error = [], f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - started
        outcomes.append(
            QueryOutcome(
                path=str(entry.path),
                role=entry.role,
                object_id=entry.object_id,
                source=entry.source,
                camera=entry.camera,
                seconds=seconds,
                ranking=[(str(oid), float(score)) for oid, score in ranking],
                error=error,
                shows=shows(entry),
            )
        )
        if progress is not None:
            progress(done, len(query_set))

    photos = [outcome for outcome in outcomes if outcome.role == PHOTO_ROLE]
    negatives = [outcome for outcome in outcomes if outcome.role in NEGATIVE_ROLES]
    top5_hits = sum(
        outcome.object_id in [oid for oid, _ in outcome.ranking[:RECALL_DEPTH]]
        for outcome in photos
    )
    query_ms = [outcome.seconds * 1000 for outcome in outcomes]
    size_on_disk = getattr(method, "size_on_disk", lambda: None)()
    return Report(
        name=method.name,
        n_covers=len(catalogue),
        n_photos=len(photos),
        n_negatives=len(negatives),
        build_seconds=build_seconds,
        query_p50_ms=_percentile(query_ms, 0.50),
        query_p95_ms=_percentile(query_ms, 0.95),
        index_rss_mb=(rss_after - rss_before) / 2**20,
        build_peak_mb=(peak.peak - rss_before) / 2**20,
        size_on_disk_mb=None if size_on_disk is None else size_on_disk / 2**20,
        top1=_share(sum(o.top_id == o.object_id for o in photos), len(photos)),
        top5=_share(top5_hits, len(photos)),
        top1_by_source=_top1_by(photos, lambda outcome: outcome.source),
        top1_by_camera=_top1_by(photos, lambda outcome: outcome.camera or NO_CAMERA),
        query_errors=sum(bool(outcome.error) for outcome in outcomes),
        notes=getattr(method, "notes", ""),
        outcomes=outcomes,
        **_operating_points(photos, negatives),
    )


def _cell(value: float | int | None, digits: int = 1, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value != value:
        return "n/a"
    if percent:
        return f"{100 * value:.{digits}f}%"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def markdown_table(reports: list[Report]) -> str:
    """Render reports as Markdown: a main table, a per-set table and the notes.

    Parameters
    ----------
    reports : list of Report
        One per method, all measured on the same catalogue and queries.

    Returns
    -------
    str
        Markdown text ending in a newline, ready to paste into a results file.
    """
    if not reports:
        return "No method was measured.\n"
    first = reports[0]
    lines = [
        f"Catalogue: {first.n_covers} covers. Queries: {first.n_photos} photos of "
        f"catalogue covers, {first.n_negatives} negatives (photos of other books "
        "and non-covers).",
        "",
        "| method | top-1 | top-5 | top-1 at 0 false | wrong at 0 false "
        "| top-1 balanced | false + wrong balanced | build s | query p50 ms "
        "| query p95 ms | index RSS MB | build peak MB | on disk MB |",
        "| --- |" + " ---: |" * 12,
    ]
    for report in reports:
        cells = [
            report.name,
            _cell(report.top1, percent=True),
            _cell(report.top5, percent=True),
            _cell(report.top1_strict, percent=True),
            _cell(report.wrong_strict),
            _cell(report.top1_balanced, percent=True),
            f"{report.false_balanced} + {report.wrong_balanced}",
            _cell(report.build_seconds),
            _cell(report.query_p50_ms),
            _cell(report.query_p95_ms),
            _cell(report.index_rss_mb),
            _cell(report.build_peak_mb),
            _cell(report.size_on_disk_mb),
        ]
        lines.append("| " + " | ".join(cells) + " |")

    groups = sorted(
        {f"source {key}" for r in reports for key in r.top1_by_source}
        | {f"camera {key}" for r in reports for key in r.top1_by_camera}
    )
    lines += [
        "",
        "Top-1 by photo set and by camera:",
        "",
        "| method | " + " | ".join(groups) + " |",
        "| --- |" + " ---: |" * len(groups),
    ]
    for report in reports:
        by_group = {f"source {k}": v for k, v in report.top1_by_source.items()}
        by_group |= {f"camera {k}": v for k, v in report.top1_by_camera.items()}
        cells = [_cell(by_group.get(group), percent=True) for group in groups]
        lines.append(f"| {report.name} | " + " | ".join(cells) + " |")

    def remarks(report: Report) -> str:
        depicted = sum(outcome.names_depicted_book for outcome in report.outcomes)
        parts = [report.notes.strip().rstrip(".")]
        if depicted:
            parts.append(
                f"{depicted} negatives that picture a catalogue book had it first "
                "(not counted as false titles)"
            )
        if report.query_errors:
            parts.append(f"{report.query_errors} queries failed")
        return "; ".join(part for part in parts if part)

    lines.append("")
    lines += [f"- {report.name}: {remarks(report)}." for report in reports]
    lines += [
        "",
        "Top-1 at 0 false: share of photos answered with the right title at the "
        "lowest score threshold that names no title for any negative. Balanced: "
        "at the threshold that maximises right answers minus false and wrong titles. "
        "Both thresholds are fitted on these same queries. A negative that pictures "
        "a catalogue book (a back cover, a whole wrap) is not counted as a false "
        "title when the method names that book. Index RSS: growth of the "
        "process's resident memory over the build (an upper bound).",
    ]
    return "\n".join(lines) + "\n"
