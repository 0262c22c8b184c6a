"""Hand-worked checks of the building blocks: flatten, distributions, distance, confidence.

Every expected number is written out with its arithmetic; none is computed by the code
under test.
"""

from __future__ import annotations

import pytest

from steer_tools.statistics import (
    confidence,
    flatten,
    pairwise_distance_matrix,
    replicate_distance,
    summarize,
)
from tests.helpers.replicates import reps

T_975_DF2 = 4.302652729749464  # Student t, 97.5th percentile, 2 degrees of freedom (table: 4.303)
T_975_DF1 = 12.706204736174707  # ... 1 degree of freedom (table: 12.706)


def dist(*datas, field="x"):
    return summarize(reps(*datas)).distributions[field]


# --- flatten -------------------------------------------------------------------------------


def test_flatten_nested_paths():
    data = {"a": {"b": [1, {"c": 2}]}, "d": "x", "items": [[1], [2, 3]]}
    assert flatten(data) == {
        "a.b[0]": 1,
        "a.b[1].c": 2,
        "d": "x",
        "items[0][0]": 1,
        "items[1][0]": 2,
        "items[1][1]": 3,
    }


@pytest.mark.parametrize("root", ["some text", 3, 2.5, None, True])
def test_flatten_scalar_root_uses_value_path(root):
    assert flatten(root) == {"value": root}


def test_flatten_empty_containers():
    assert flatten({"e": {}, "f": [], "g": {"h": []}}) == {"e": {}, "f": [], "g.h": []}
    assert flatten({}) == {}
    assert flatten([]) == {}
    assert flatten([1, 2]) == {"[0]": 1, "[1]": 2}


# --- numeric distributions -----------------------------------------------------------------


def test_numeric_distribution_2_4_6():
    d = dist({"x": 2}, {"x": 4}, {"x": 6})
    # mean = 12/3 = 4; std = sqrt(((2-4)^2 + 0 + (6-4)^2) / (3-1)) = sqrt(8/2) = 2
    assert d["type"] == "numeric"
    assert d["n"] == 3 and d["missing"] == 0
    assert d["mean"] == pytest.approx(4.0)
    assert d["std"] == pytest.approx(2.0)
    assert d["min"] == 2 and d["max"] == 6
    assert isinstance(d["min"], int)
    assert d["median"] == pytest.approx(4.0)
    # n = 3 < 10: the order-statistic interval of the median, [x(1), x(3)] = [min, max],
    # which covers the median with probability 1 - 2 * (1/2)^3 = 0.75. Student t would give
    # 4 ± t(0.975, 2) * 2 / sqrt(3) = 4 ± 4.968 = [-0.968, 8.968], beyond anything observed.
    assert pytest.approx(-0.9682754235006623) == 4 - T_975_DF2 * 2 / 3**0.5
    assert d["ci95"] == [2.0, 6.0]
    assert d["ci_method"] == "order-median" and d["ci_coverage"] == 0.75
    assert d["cv"] == pytest.approx(0.5)  # 2 / |4|


def test_numeric_distribution_two_values_symmetric_around_zero():
    d = dist({"x": -1.0}, {"x": 1.0})
    # mean 0; std = sqrt((1 + 1) / 1) = 1.4142135623730951
    # Student t would give half = t(0.975, 1) * sqrt(2) / sqrt(2) = 12.706204736174707; with
    # n = 2 the interval is [min, max], covering the median with probability 1 - 2/4 = 0.5
    assert d["mean"] == pytest.approx(0.0)
    assert d["std"] == pytest.approx(1.4142135623730951)
    assert T_975_DF1 > 12.7
    assert d["ci95"] == [-1.0, 1.0] and d["ci_coverage"] == 0.5
    assert d["cv"] is None  # mean == 0


def test_numeric_distribution_constant_and_single():
    d = dist({"x": 0.1}, {"x": 0.1}, {"x": 0.1})
    assert d["std"] == 0.0  # exactly, not 1e-17
    assert d["ci95"] == [0.1, 0.1]
    assert d["cv"] == 0.0  # 0 / 0.1

    single = dist({"x": 7})
    assert single["n"] == 1 and single["std"] is None and single["cv"] is None
    assert single["ci95"] == [7.0, 7.0]


def test_numeric_distribution_with_missing_and_null():
    # values present: 1 and 3 (one replicate lacks x, one has null) -> n 2, mean 2,
    # std = sqrt((1 + 1) / 1) = 1.4142135623730951, median 2
    d = dist({"x": 1}, {"x": 3}, {}, {"x": None})
    assert d["type"] == "numeric"
    assert d["n"] == 2 and d["missing"] == 2
    assert d["mean"] == pytest.approx(2.0)
    assert d["std"] == pytest.approx(1.4142135623730951)
    assert d["median"] == pytest.approx(2.0)


# --- categorical distributions -------------------------------------------------------------


def test_categorical_distribution_counts_mode_entropy():
    d = dist({"x": "a"}, {"x": "a"}, {"x": "b"})
    # entropy of counts [2, 1]: -(2/3 log2 2/3 + 1/3 log2 1/3) = 0.9182958340544896 bits,
    # normalised by log2(2 distinct) = 1
    assert d == {
        "type": "categorical",
        "n": 3,
        "counts": {"a": 2, "b": 1},
        "mode": "a",
        "agreement": pytest.approx(2 / 3),
        # Wilson, z = 1.959964: see test_statistics_intervals.py for the arithmetic
        "agreement_ci95": pytest.approx([0.207660, 0.938508], abs=1e-6),
        "entropy": pytest.approx(0.9182958340544896),
    }


def test_boolean_distribution_counts_missing():
    d = dist({"x": True}, {"x": True}, {"x": False}, {})
    # counts [2, 1, 1] of 4: H = 0.5*1 + 0.25*2 + 0.25*2 = 1.5 bits;
    # normalised by log2(3) = 1.584962500721156 -> 0.9463946303571862
    assert d["type"] == "boolean"
    assert d["counts"] == {"True": 2, "False": 1, "missing": 1}
    assert d["mode"] is True
    assert d["agreement"] == pytest.approx(0.5)  # 2 / 4
    assert d["entropy"] == pytest.approx(0.9463946303571862)


def test_entropy_extremes_and_tie_break():
    assert dist({"x": "a"}, {"x": "a"})["entropy"] == 0.0  # one distinct value
    even = dist({"x": "b"}, {"x": "a"})
    assert even["entropy"] == pytest.approx(1.0)  # [1, 1] -> 1 bit / log2(2)
    assert even["mode"] == "b"  # tie goes to the earliest replicate


# --- distance ------------------------------------------------------------------------------


def test_text_jaccard():
    # {a,b,c} vs {b,c,d}: intersection 2, union 4 -> 1 - 2/4 = 0.5
    assert replicate_distance("a b c", "b c d") == pytest.approx(0.5)
    assert replicate_distance("The cat.", "the CAT") == 0.0  # lower-cased word tokens
    # {hello, world} vs {hello, there}: 1 - 1/3
    assert replicate_distance("Hello, world!", "hello there") == pytest.approx(2 / 3)
    assert replicate_distance("", "") == 0.0
    assert replicate_distance("", "word") == 1.0


def test_numeric_field_distance():
    assert replicate_distance({"x": 8}, {"x": 10}) == pytest.approx(0.2)  # |8-10| / 10
    assert replicate_distance({"x": 0}, {"x": 0.0}) == 0.0
    assert replicate_distance({"x": -1}, {"x": 1}) == 1.0  # 2 / 1 clipped to 1


def test_categorical_and_missing_distance():
    assert replicate_distance({"x": True}, {"x": False}) == 1.0
    assert replicate_distance({"x": None}, {"x": None}) == 0.0
    assert replicate_distance({"x": True}, {"x": 1}) == 1.0  # bool is not a number
    assert replicate_distance({"x": 1}, {"y": 1}) == 1.0  # union {x, y}, each missing once
    assert replicate_distance({}, {}) == 0.0


def test_mixed_replicate_distance_is_mean_over_union():
    a = {"a": 1, "b": "x", "c": True}
    b = {"a": 2, "b": "x", "d": 1}
    # union {a,b,c,d}: a |1-2|/2 = 0.5, b 0, c missing 1, d missing 1 -> 2.5 / 4
    assert replicate_distance(a, b) == pytest.approx(0.625)


def test_pairwise_matrix_numbers():
    m = pairwise_distance_matrix([{"x": 10}, {"x": 8}, {"x": 5}])
    # d12 = 2/10 = 0.2, d13 = 5/10 = 0.5, d23 = 3/8 = 0.375
    assert m == [
        [0.0, pytest.approx(0.2), pytest.approx(0.5)],
        [pytest.approx(0.2), 0.0, pytest.approx(0.375)],
        [pytest.approx(0.5), pytest.approx(0.375), 0.0],
    ]
    assert pairwise_distance_matrix([]) == []
    assert pairwise_distance_matrix([{"x": 1}]) == [[0.0]]


def test_pairwise_matrix_nullable_and_boolean_columns():
    m = pairwise_distance_matrix([{"x": 1, "f": True}, {"x": 2, "f": True}, {"x": None}])
    # pair 1-2: x 1/2 = 0.5, f 0 -> 0.25; pair 1-3: x number vs null 1, f missing 1 -> 1
    assert m[0][1] == pytest.approx(0.25)
    assert m[0][2] == pytest.approx(1.0)
    assert m[1][2] == pytest.approx(1.0)


def test_matrix_matches_replicate_distance():
    datas = [
        {"n": 3.0, "t": "red fox", "b": True, "m": [1, "z"]},
        {"n": 4.0, "t": "red dog", "b": False, "m": [2, None]},
        {"n": 3.5, "t": "Red fox!", "extra": {}},
    ]
    m = pairwise_distance_matrix(datas)
    for i in range(3):
        for j in range(3):
            expected = 0.0 if i == j else replicate_distance(datas[i], datas[j])
            assert m[i][j] == pytest.approx(expected)
            assert m[i][j] == m[j][i]


# --- confidence ----------------------------------------------------------------------------


def test_confidence_formula():
    assert confidence(3, 4, 0.2) == pytest.approx(0.6)  # 3/4 * (1 - 0.2)
    assert confidence(2, 3, 1 / 3) == 0.4444  # 2/3 * 2/3 = 0.44444.. rounded
    assert confidence(1, 2, 0.9) == 0.5  # one valid: agreement 1, validity 1/2
    assert confidence(0, 4, 0.0) == 0.0
    assert confidence(2, 2, 1.5) == 0.0  # clipped
    assert confidence(0, 0, 0.0) == 0.0
