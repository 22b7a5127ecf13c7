"""How cost and accuracy grow with the catalogue: real covers plus generated ones.

The real data has 1,702 covers. To reach 10,000 or 100,000, :class:`GeneratedCovers`
makes distractor covers from the real covers that no photo shows (so no generated
cover is a copy of a photographed one, and every photo still has exactly one right
answer). Each generated cover is one of:

- a *crop*: 55-90 % of a source cover's width and height at a random place,
  stretched back to a cover's shape;
- a *flip*: the source mirrored left to right;
- a *colour shift*: hue rotated, saturation and brightness scaled;
- a *tile recombination*: a 2x2 or 3x3 grid whose cells come from different sources.

and, half of the time, a colour shift on top of a crop, flip or recombination. They
keep the statistics of real covers (lettering, photos, flat colour) so that an index
meets the near-misses a large real catalogue would hold, and they are deterministic:
cover ``n`` of seed ``s`` is always the same image. They are written once as JPEG
under the cache directory and read from there afterwards, so a 100,000-cover run
streams from disk and never holds the generated images in memory.

Run, for one method at several sizes::

    python -m benchmarks.scale --method brute-orb --sizes 1000,1702 --photos 30
    python -m benchmarks.scale --method cvmatch-orb --sizes 1702,10000,100000

Each run adds its reports to ``scale.json`` in the output folder and redraws
``scale.png`` from everything recorded there. The real catalogue's own point needs no
new run: ``--include`` takes the JSON that ``run_all --size 1702`` wrote and adds the
methods measured there, with no method run at all::

    python -m benchmarks.scale --include run_all-size1702.json

Memory is the growth of the process's resident set over a build, and a second build
in the same process reuses memory the first one freed: for memory figures, give one
size per run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.methods.images import CACHE_DIR, fit_long_side, read_bgr
from benchmarks.protocol import (
    PHOTO_ROLE,
    Entry,
    Report,
    covers,
    evaluate,
    load_manifest,
    queries,
    subsample,
)

logger = logging.getLogger("cvmatch.benchmarks")

GENERATED_SOURCE = "generated"

# Long side of a generated cover: within the range of the real catalogue (Google
# Books thumbnails of 270 px, DVD covers of 500 px).
GENERATED_LONG_SIDE = 400

# Share of a source cover kept by a crop, per side; less would leave too little of
# it to be a near-miss, more would be nearly the source itself.
CROP_SHARE = (0.55, 0.90)

# Grid sizes of a tile recombination.
TILE_GRIDS = (2, 3)

# Hue rotation (OpenCV hue units, 0-180) and saturation and brightness factors of a
# colour shift: wide enough to make another edition's palette.
HUE_SHIFT = (20, 160)
SATURATION_GAIN = (0.6, 1.4)
BRIGHTNESS_GAIN = (0.7, 1.2)

# JPEG quality of the generated files: as good as the real catalogue files.
JPEG_QUALITY = 90

# Generated covers per folder of the cache, so that no folder holds 100,000 files.
FILES_PER_FOLDER = 1000

DEFAULT_DATA_DIR = Path(os.environ.get("CVMATCH_DATA", "/work/shared/data"))


def _colour_shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(*HUE_SHIFT)) % 180
    hsv[..., 1] *= rng.uniform(*SATURATION_GAIN)
    hsv[..., 2] *= rng.uniform(*BRIGHTNESS_GAIN)
    hsv = np.clip(hsv, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def _crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    crop_height = int(height * rng.uniform(*CROP_SHARE))
    crop_width = int(width * rng.uniform(*CROP_SHARE))
    top = int(rng.integers(0, height - crop_height + 1))
    left = int(rng.integers(0, width - crop_width + 1))
    piece = image[top : top + crop_height, left : left + crop_width]
    return cv2.resize(piece, (width, height), interpolation=cv2.INTER_CUBIC)


def _recombine(sources: list[np.ndarray], grid: int, shape) -> np.ndarray:
    height, width = shape
    canvas = np.zeros((height, width, 3), np.uint8)
    rows = np.linspace(0, height, grid + 1).astype(int)
    cols = np.linspace(0, width, grid + 1).astype(int)
    for cell, source in enumerate(sources):
        row, col = divmod(cell, grid)
        tile = cv2.resize(source, (width, height))
        region = (slice(rows[row], rows[row + 1]), slice(cols[col], cols[col + 1]))
        canvas[region] = tile[region]
    return canvas


class GeneratedCovers:
    """Distractor covers derived from real ones, cached on disk as they are made.

    Parameters
    ----------
    sources : list of Entry
        Real covers to derive from; none of them should be shown by a test photo.
    cache_dir : Path
        Where the JPEG files go; a folder per seed.
    seed : int
        Seed of the whole sequence: cover ``n`` depends only on ``seed`` and ``n``.

    Examples
    --------
    >>> generated = GeneratedCovers(sources, CACHE_DIR / "generated")  # doctest: +SKIP
    >>> entries = generated.entries(10_000)  # doctest: +SKIP
    >>> entries[0].object_id  # doctest: +SKIP
    'generated_000000'
    """

    def __init__(self, sources: list[Entry], cache_dir: Path, seed: int = 0):
        if not sources:
            raise ValueError("no source covers to generate from")
        self.sources = sorted(sources, key=lambda entry: entry.object_id)
        self.folder = Path(cache_dir) / f"seed{seed}"
        self.seed = seed

    def path(self, number: int) -> Path:
        """File of generated cover ``number``, whether it exists yet or not."""
        return self.folder / f"{number // FILES_PER_FOLDER:03d}" / f"{number:06d}.jpg"

    def _source(self, rng: np.random.Generator) -> np.ndarray:
        entry = self.sources[rng.integers(len(self.sources))]
        return fit_long_side(read_bgr(entry.path), GENERATED_LONG_SIDE)

    def make(self, number: int) -> np.ndarray:
        """Draw generated cover ``number`` (without touching the cache)."""
        rng = np.random.default_rng([self.seed, number])
        base = self._source(rng)
        kind = rng.choice(["crop", "flip", "colour", "tiles"])
        if kind == "crop":
            image = _crop(base, rng)
        elif kind == "flip":
            image = cv2.flip(base, 1)
        elif kind == "colour":
            image = _colour_shift(base, rng)
        else:
            grid = int(rng.choice(TILE_GRIDS))
            others = [self._source(rng) for _ in range(grid * grid - 1)]
            image = _recombine([base, *others], grid, base.shape[:2])
        if kind != "colour" and rng.random() < 0.5:
            image = _colour_shift(image, rng)
        return image

    def entries(self, count: int, progress: bool = False) -> list[Entry]:
        """Return ``count`` generated covers as catalogue entries, making missing files.

        Parameters
        ----------
        count : int
            How many, numbered from 0: the first ``count`` of the sequence.
        progress : bool
            Log every thousand files made.
        """
        made = 0
        started = time.perf_counter()
        entries = []
        for number in range(count):
            path = self.path(number)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                image = self.make(number)
                partial = path.with_suffix(".part.jpg")
                cv2.imwrite(
                    str(partial), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
                )
                partial.replace(path)
                made += 1
                if progress and made % FILES_PER_FOLDER == 0:
                    rate = made / (time.perf_counter() - started)
                    logger.info("generated %d covers (%.0f a second)", made, rate)
            entries.append(
                Entry(
                    path=path,
                    role="cover",
                    object_id=f"{GENERATED_SOURCE}_{number:06d}",
                    title=f"generated cover {number}",
                    source=GENERATED_SOURCE,
                )
            )
        return entries


def catalogue_of_size(
    entries: list[Entry],
    size: int,
    n_photos: int | None = None,
    cache_dir: Path = CACHE_DIR / "generated",
    seed: int = 0,
) -> tuple[list[Entry], list[Entry]]:
    """A catalogue of ``size`` covers and the queries that go with it.

    Below the real catalogue's size, real covers are drawn at random, keeping those
    the kept photos show. Above it, all real covers are kept and generated covers
    fill the rest.

    Parameters
    ----------
    entries : list of Entry
        All of ``manifest.csv``.
    size : int
        Number of covers wanted.
    n_photos : int, optional
        Photos to query with, drawn at random; all when None. Negatives are all kept.
    cache_dir : Path
        Cache of generated covers.
    seed : int
        Seed of the draws and of the generated covers.

    Returns
    -------
    catalogue, query_set : list of Entry
    """
    real_covers, query_set = covers(entries), queries(entries)
    catalogue, query_set = subsample(
        real_covers, query_set, n_photos, min(size, len(real_covers)), seed
    )
    if size > len(real_covers):
        photographed = {e.object_id for e in entries if e.role == PHOTO_ROLE}
        sources = [c for c in real_covers if c.object_id not in photographed]
        generated = GeneratedCovers(sources, cache_dir, seed)
        catalogue = catalogue + generated.entries(size - len(real_covers), True)
    return catalogue, query_set


def plot(records: list[dict], png_path: Path) -> None:
    """Draw query time, build time, memory and top-1 against catalogue size.

    Parameters
    ----------
    records : list of dict
        :meth:`Report.as_dict` outputs, any number of methods and sizes.
    png_path : Path
        Where the figure is written.
    """
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("query_p50_ms", "query time, median (ms)", True),
        ("build_seconds", "build time (s)", True),
        ("index_rss_mb", "index memory, RSS growth (MB)", True),
        ("top1", "top-1 on real photos", False),
    ]
    figure, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    names = sorted({record["name"] for record in records})
    for axis, (key, label, logarithmic) in zip(axes.ravel(), panels, strict=True):
        for name in names:
            points = sorted(
                (record["n_covers"], record[key])
                for record in records
                if record["name"] == name and record[key] is not None
            )
            if points:
                sizes, values = zip(*points, strict=True)
                axis.plot(sizes, values, marker="o", label=name)
        axis.set_xscale("log")
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if logarithmic:
            axis.set_yscale("log")
        else:
            axis.set_ylim(0, 1)
        axis.set_xlabel("catalogue size (covers)")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    figure.suptitle("Cost and accuracy against catalogue size")
    figure.savefig(png_path, dpi=120)
    plt.close(figure)


def _record(records: list[dict], report_dict: dict) -> list[dict]:
    """``records`` with ``report_dict`` in place of any earlier one of its method and
    size."""
    key = (report_dict["name"], report_dict["n_covers"])
    kept = [record for record in records if (record["name"], record["n_covers"]) != key]
    return [*kept, {k: v for k, v in report_dict.items() if k != "outcomes"}]


def include_reports(paths: list[Path], out_dir: Path) -> None:
    """Add the reports of earlier ``run_all`` runs to ``scale.json`` and redraw."""
    json_path = Path(out_dir) / "scale.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    records = json.loads(json_path.read_text()) if json_path.exists() else []
    for path in paths:
        for report_dict in json.loads(Path(path).read_text()):
            records = _record(records, report_dict)
    json_path.write_text(json.dumps(records, indent=1))
    plot(records, json_path.with_name("scale.png"))


def run_scale(
    factory,
    sizes: list[int],
    entries: list[Entry],
    n_photos: int | None = None,
    out_dir: Path = CACHE_DIR / "results",
    seed: int = 0,
) -> list[Report]:
    """Evaluate a fresh method from ``factory`` at each catalogue size.

    Parameters
    ----------
    factory : callable
        Takes no argument and returns an unbuilt :class:`~benchmarks.protocol.Method`.
    sizes : list of int
        Catalogue sizes, smallest first.
    entries : list of Entry
        All of ``manifest.csv``.
    n_photos : int, optional
        Photos queried at every size (the same draw each time); all when None.
    out_dir : Path
        Where ``scale.json`` gains the reports and ``scale.png`` is redrawn.
    seed : int
        Seed of the draws and generated covers.

    Returns
    -------
    list of Report
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "scale.json"
    reports = []
    for size in sizes:
        catalogue, query_set = catalogue_of_size(entries, size, n_photos, seed=seed)
        method = factory()
        logger.info("%s: building on %d covers", method.name, len(catalogue))
        report = evaluate(method, catalogue, query_set, seed=seed)
        reports.append(report)
        # Read again just before writing: another run may have added its own since.
        records = json.loads(json_path.read_text()) if json_path.exists() else []
        records = _record(records, report.as_dict())
        json_path.write_text(json.dumps(records, indent=1))
        plot(records, out_dir / "scale.png")
        logger.info(
            "%s at %d covers: top-1 %.3f, query p50 %.0f ms, build %.0f s, RSS %.0f MB",
            report.name,
            report.n_covers,
            report.top1,
            report.query_p50_ms,
            report.build_seconds,
            report.index_rss_mb,
        )
        del method
    return reports


def main(argv: list[str] | None = None) -> int:
    from benchmarks.registry import method_factories
    from benchmarks.run_all import limit_threads

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--method", help="a name from benchmarks.registry (needed unless --include)"
    )
    parser.add_argument("--sizes", default="1702,10000,100000", help="comma-separated")
    parser.add_argument("--photos", type=int, help="photos queried (default: all)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="the shared data set (CVMATCH_DATA)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=CACHE_DIR / "results",
        help="where scale.json gains the reports and scale.png is redrawn",
    )
    parser.add_argument(
        "--training-budget",
        type=float,
        default=1800.0,
        help="seconds of Deep Ranking training",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="cores per method, as run_all's --threads (default 1)",
    )
    parser.add_argument(
        "--include",
        type=Path,
        action="append",
        default=[],
        help="a run_all JSON whose reports join scale.json (no method is run)",
    )
    parser.add_argument(
        "--generate-only",
        action="store_true",
        help="make the generated covers for the largest size and stop",
    )
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    limit_threads(options.threads)

    if options.include:
        include_reports(options.include, options.out_dir)
        print(f"wrote {options.out_dir / 'scale.json'} and scale.png")
        return 0
    if not options.method:
        parser.error("--method is needed (or --include)")
    entries = load_manifest(options.data_dir)
    sizes = sorted(int(size) for size in options.sizes.split(","))
    if options.generate_only:
        catalogue_of_size(entries, sizes[-1])
        return 0
    factories, note = method_factories(options.training_budget, options.threads)
    if options.method not in factories:
        known = ", ".join(factories)
        print(f"unknown method {options.method!r}; known: {known}. {note}".strip())
        return 2
    run_scale(
        factories[options.method], sizes, entries, options.photos, options.out_dir
    )
    print(f"wrote {options.out_dir / 'scale.json'} and {options.out_dir / 'scale.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
