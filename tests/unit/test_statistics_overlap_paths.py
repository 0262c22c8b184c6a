"""Token overlap has two implementations (Python sets for small inputs, scipy.sparse for large
ones, steer_tools/statistics/text_overlap.py) and the distance matrix is laid out without
scipy.spatial: each must give exactly what the other path / scipy gives."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy.spatial.distance import squareform

from steer_tools.statistics import text_overlap
from steer_tools.statistics.distance import pairwise_distance_matrix

WORDS = ["risk", "Risk!", "team", "ship", "q3", "été", "c++", "go", "go-live", "", "  "]


def _texts(rng: random.Random, cells: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 6))) for _ in range(cells)]


@pytest.mark.parametrize(("k", "fields"), [(3, 5), (5, 12), (10, 7), (4, 40)])
def test_small_and_sparse_paths_agree(k, fields, monkeypatch):
    rng = random.Random(k * 100 + fields)
    texts = _texts(rng, k * fields)
    with monkeypatch.context() as m:
        m.setattr(text_overlap, "_SMALL", 10**9)  # force the set path
        sets = text_overlap.overlap(texts, k)
    with monkeypatch.context() as m:
        m.setattr(text_overlap, "_SMALL", -1)  # force the sparse path
        sparse = text_overlap.overlap(texts, k)
    for a, b in zip(sets, sparse, strict=True):
        np.testing.assert_array_equal(a, b)


def test_distance_matrix_layout_matches_scipy_squareform():
    replicates = [{"a": i % 2, "b": f"text {i}", "c": [i, 1]} for i in range(6)]
    matrix = np.array(pairwise_distance_matrix(replicates))
    condensed = matrix[np.triu_indices(6, 1)]
    np.testing.assert_array_equal(matrix, squareform(condensed))
    assert (np.diag(matrix) == 0).all() and (matrix == matrix.T).all()
