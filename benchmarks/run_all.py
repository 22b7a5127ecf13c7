"""Run every method through the shared protocol and write the tables as Markdown.

::

    python -m benchmarks.run_all --size 1702           # the whole real catalogue
    python -m benchmarks.run_all --quick   # a few minutes: 120 covers, 20 photos
    python -m benchmarks.run_all --size 10000 --methods cvmatch-orb,efficientnet

``--size`` is the catalogue size: below the 1,702 real covers a random subset that
keeps every photographed cover, above it the real covers plus generated distractors
(see :mod:`benchmarks.scale`). cvmatch is measured through
``benchmarks/bench_cvmatch.py``; when that does not import, cvmatch is skipped with a
note and the baselines still run, and so do the others when one method cannot start.

Each method is built and queried in a fresh Python process, one after the other, so
that its memory figures do not depend on what the methods before it allocated and
freed, nor on which libraries they had already loaded.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmarks.methods.images import CACHE_DIR

# What --quick measures: few enough covers and photos that every method, the
# brute-force ones included, finishes within ten minutes on two cores, and enough
# that a broken method shows (a random ranking scores near zero on 20 photos).
QUICK_COVERS = 120
QUICK_PHOTOS = 20
QUICK_TRAINING_BUDGET = 45.0

DEFAULT_TRAINING_BUDGET = 1800.0
DEFAULT_DATA_DIR = Path(os.environ.get("CVMATCH_DATA", "/work/shared/data"))


def limit_threads(threads: int) -> None:
    """Cap the threads of OpenCV, BLAS, PyTorch and OpenMP for a fair measurement.

    Call it before the methods import torch: OpenMP reads its variable once.
    """
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(threads)
    # NumPy's BLAS (cvmatch's quantisation, the embeddings' similarity products)
    # starts one thread per core unless told otherwise.
    threadpool_limits(threads)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def _versions() -> str:
    import cv2

    parts = [f"Python {platform.python_version()}", f"OpenCV {cv2.__version__}"]
    try:
        import torch

        parts.append(f"PyTorch {torch.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)


def _progress(name: str):
    def report(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            print(f"  {name}: {done}/{total} queries", file=sys.stderr, flush=True)

    return report


def _measure(name, budget, threads, catalogue, query_set, seed) -> dict:
    """Build and query one method in this process; return its report as plain data."""
    limit_threads(threads)
    from benchmarks.protocol import evaluate
    from benchmarks.registry import method_factories

    factories, _ = method_factories(budget, threads)
    method = factories[name]()
    print(f"{name}: building", file=sys.stderr, flush=True)
    report = evaluate(method, catalogue, query_set, _progress(name), seed)
    return report.as_dict(with_outcomes=True)


def _measure_in_fresh_process(*arguments) -> dict:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as worker:
        return worker.submit(_measure, *arguments).result()


def _kept_reports(paths: list[Path], query_paths: list[str]) -> list:
    """Reports of earlier runs, refused unless they queried the very same files.

    A method found in several files is taken from the last one named.
    """
    from benchmarks.protocol import Report

    kept = {}
    for path in paths:
        for record in json.loads(path.read_text()):
            report = Report.from_dict(record)
            if report.query_paths() != query_paths:
                raise SystemExit(
                    f"{path}: {report.name} was measured on other queries; "
                    "rerun it instead of keeping it"
                )
            kept.pop(report.name, None)
            kept[report.name] = report
    return list(kept.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run_all", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", type=int, default=1702, help="catalogue size")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"at most {QUICK_COVERS} covers, {QUICK_PHOTOS} photos, "
        f"{QUICK_TRAINING_BUDGET:.0f} s of training",
    )
    parser.add_argument("--methods", help="comma-separated names (default: all)")
    parser.add_argument("--photos", type=int, help="photos queried (default: all)")
    parser.add_argument(
        "--training-budget",
        type=float,
        help=f"Deep Ranking seconds (default {DEFAULT_TRAINING_BUDGET:.0f})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="cores per method: threads of OpenCV, BLAS, PyTorch and ONNX Runtime, "
        "and cvmatch's feature-extraction processes (default 1)",
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, help="Markdown file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep",
        type=Path,
        action="append",
        default=[],
        help="JSON of an earlier run on the same catalogue and queries: its methods "
        "that this run does not measure are kept in the table (may be repeated)",
    )
    parser.add_argument(
        "--merge-only",
        action="store_true",
        help="measure nothing: write the table of the --keep files",
    )
    options = parser.parse_args(argv)
    if options.merge_only and not options.keep:
        # Without --keep there is nothing to merge, and the empty table would be
        # written over the default results, which scale --include reads.
        parser.error("--merge-only needs at least one --keep file to merge")
    limit_threads(options.threads)

    from benchmarks.protocol import Report, load_manifest, markdown_table
    from benchmarks.registry import method_factories
    from benchmarks.scale import catalogue_of_size

    size, n_photos = options.size, options.photos
    budget = options.training_budget
    if options.quick:
        size = min(size, QUICK_COVERS)
        n_photos = min(n_photos or QUICK_PHOTOS, QUICK_PHOTOS)
        budget = budget if budget is not None else QUICK_TRAINING_BUDGET
    budget = budget if budget is not None else DEFAULT_TRAINING_BUDGET

    factories, note = method_factories(budget, options.threads)
    if note:
        print(note, file=sys.stderr)
    if options.merge_only:
        factories = {}
    elif options.methods:
        wanted = options.methods.split(",")
        unknown = [name for name in wanted if name not in factories]
        if unknown:
            print(
                f"unknown methods {unknown}; known: {', '.join(factories)}",
                file=sys.stderr,
            )
            return 2
        factories = {name: factories[name] for name in wanted}

    entries = load_manifest(options.data_dir)
    catalogue, query_set = catalogue_of_size(entries, size, n_photos, seed=options.seed)
    print(
        f"{len(catalogue)} covers, {len(query_set)} queries, methods: "
        f"{', '.join(factories)}",
        file=sys.stderr,
    )

    kept = _kept_reports(options.keep, [str(entry.path) for entry in query_set])
    suffix = f"size{len(catalogue)}" + ("-quick" if options.quick else "")
    out = options.out or CACHE_DIR / "results" / f"run_all-{suffix}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.run_all " + " ".join(argv or sys.argv[1:])
    reports, failed = [], []
    started = time.perf_counter()
    for name in [*factories, None]:
        if name is not None:
            arguments = (name, budget, options.threads, catalogue, query_set)
            try:
                record = _measure_in_fresh_process(*arguments, options.seed)
            except Exception as exc:  # one method that cannot run must not stop all
                print(f"{name} skipped: {exc}", file=sys.stderr, flush=True)
                failed.append(f"{name} could not run ({type(exc).__name__}: {exc})")
                continue
            reports.append(Report.from_dict(record))
        # Written after every method, so that a long run stopped part-way still
        # leaves the figures of the methods it finished.
        measured = {report.name for report in reports}
        table = [report for report in kept if report.name not in measured] + reports
        header = [
            f"# Benchmark: {len(catalogue)} covers"
            + (" (quick)" if options.quick else ""),
            "",
            f"`{command.strip()}` on {os.cpu_count()} cores, {options.threads} "
            f"thread(s); {_versions()}; {time.strftime('%Y-%m-%d %H:%M')}; "
            f"{time.perf_counter() - started:.0f} s in all.",
            "",
        ]
        carried = [r.name for r in table if r.name not in measured]
        if carried:
            files = ", ".join(f"`{path}`" for path in options.keep)
            header += [f"Kept from {files}: {', '.join(carried)}.", ""]
        for line in [note, *failed]:
            if line:
                header += [line, ""]
        out.write_text("\n".join(header) + markdown_table(table))
        out.with_suffix(".json").write_text(
            json.dumps(
                [report.as_dict(with_outcomes=True) for report in table], indent=1
            )
        )
    print(out.read_text())
    print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
