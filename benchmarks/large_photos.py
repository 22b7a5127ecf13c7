"""Time and memory of matching a 48-megapixel photo, against its small original.

Phone cameras save 12 to 48 megapixels. cvmatch works at a fixed size (see
``cvmatch.tuning.PHOTO_MAX_SIDE``), so what a large file costs is decoding it. This
script upscales a bundled sample photo to 8000x6000, saves it as JPEG (which the loader
decodes at reduced scale) and as PNG (which must be decoded whole), and matches each,
and the original, against an index of the sample covers::

    python -m benchmarks.large_photos

Each photo is matched in a fresh process, so that its peak resident memory is its
own; the time is the median of several matches in that process, decoding included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

import cvmatch

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PHOTO = REPO / "sample_covers" / "photos" / "query03.png"
LARGE_SIZE = (6000, 8000)  # width, height: 48 megapixels

# Runs in the child process: match REPEATS times, print the figures as JSON.
_CHILD = """
import json, resource, statistics, sys, time
import psutil
import cvmatch
index = cvmatch.load_index(sys.argv[1])
before = psutil.Process().memory_info().rss
times, title = [], None
for _ in range(int(sys.argv[3])):
    started = time.perf_counter()
    result = index.match(sys.argv[2])
    times.append(time.perf_counter() - started)
    title = result.book.title if result.matched else None
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"title": title, "median_s": statistics.median(times),
                  "peak_growth_mb": (peak - before) / 2**20}))
"""


def _measure(index_path: Path, photo: Path, repeats: int) -> dict:
    finished = subprocess.run(
        [sys.executable, "-c", _CHILD, str(index_path), str(photo), str(repeats)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.large_photos", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        catalogue = cvmatch.read_catalogue(REPO / "sample_covers" / "catalogue.csv")
        index_path = folder / "sample.cvmatch"
        cvmatch.save_index(cvmatch.CoverIndex.build(catalogue), index_path)

        large = cv2.resize(
            cv2.imread(str(SAMPLE_PHOTO)), LARGE_SIZE, interpolation=cv2.INTER_CUBIC
        )
        photos = {
            "original PNG, 400x533": SAMPLE_PHOTO,
            "48 MP JPEG (quality 90)": folder / "large.jpg",
            "48 MP PNG": folder / "large.png",
        }
        cv2.imwrite(
            str(photos["48 MP JPEG (quality 90)"]),
            large,
            [cv2.IMWRITE_JPEG_QUALITY, 90],
        )
        cv2.imwrite(str(photos["48 MP PNG"]), large)
        del large

        print("| photo | file MB | title | match, median s | peak RSS growth MB |")
        print("| --- | ---: | --- | ---: | ---: |")
        for name, path in photos.items():
            figures = _measure(index_path, path, options.repeats)
            print(
                f"| {name} | {path.stat().st_size / 2**20:.1f} | {figures['title']} "
                f"| {figures['median_s']:.2f} | {figures['peak_growth_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()
