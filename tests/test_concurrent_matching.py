"""One loaded index queried from several threads at once answers as it does alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import SAMPLE_COVERS, SAMPLE_PHOTOS
from PIL import Image

import cvmatch
from cvmatch.inverted_index import InvertedIndex


@pytest.fixture
def eight_photos(tmp_path):
    """Eight different photos: the five sample photos, one turned on its side, one
    blank and one 40x60 thumbnail (the last two have too few features)."""
    photos = [SAMPLE_PHOTOS / f"query0{number}.png" for number in range(1, 6)]
    with Image.open(SAMPLE_PHOTOS / "query04.png") as photo:
        photo.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways.png")
    Image.new("RGB", (500, 700), (240, 240, 230)).save(tmp_path / "blank.png")
    with Image.open(SAMPLE_COVERS / "covers" / "cover002.png") as cover:
        cover.convert("RGB").resize((40, 60)).save(tmp_path / "thumbnail.png")
    names = ("sideways.png", "blank.png", "thumbnail.png")
    return photos + [tmp_path / name for name in names]


def test_eight_threads_answer_as_one_at_a_time(sample_index_file, eight_photos):
    """Eight threads matching different photos against one loaded index at the same
    moment give exactly the answers that matching them one by one gave."""
    index = cvmatch.load_index(sample_index_file)
    one_at_a_time = [index.match(photo).to_dict() for photo in eight_photos]
    assert [answer["matched"] for answer in one_at_a_time] == [True] * 6 + [False] * 2

    start = threading.Barrier(len(eight_photos))

    def match(photo):
        start.wait()
        return index.match(photo).to_dict()

    with ThreadPoolExecutor(len(eight_photos)) as pool:
        together = list(pool.map(match, eight_photos))

    assert together == one_at_a_time


def test_first_queries_of_a_fresh_index_from_eight_threads_agree(sample_index):
    """Eight threads that score against a fresh inverted index at the same moment all
    get one score per cover, and the index still holds one row per cover."""
    covers = sample_index.covers
    query = covers[0].words

    def score(inverted, start):
        start.wait()
        return inverted.scores(query)

    for _ in range(5):
        inverted = InvertedIndex(sample_index.vocabulary.n_words)
        for cover in covers:
            inverted.add(cover.words)
        start = threading.Barrier(8)

        with ThreadPoolExecutor(8) as pool:
            scores = list(pool.map(score, [inverted] * 8, [start] * 8))

        assert all(len(found) == len(covers) for found in scores)
        assert inverted.counts().shape[0] == len(covers)
        assert all(np.array_equal(found, scores[0]) for found in scores)
