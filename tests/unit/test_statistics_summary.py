"""Hand-worked checks of ``summarize``: consensus, disagreements, confidence, truncation."""

from __future__ import annotations

import json

import pytest

from steer_tools.evidence import BundleLimits, BundleSummary
from steer_tools.statistics import summarize
from tests.helpers.replicates import reps

# --- consensus -----------------------------------------------------------------------------


def test_consensus_ignores_invalid_replicate():
    s = summarize(reps({"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 99, "b": "x"}, invalid={3}))
    assert s.consensus == {"a": 1}
    assert len(s.disagreements) == 1
    d = s.disagreements[0]
    assert (d.field, d.values, d.replicate_ids) == ("b", ["x", "y"], ["r1", "r2"])
    # matrix over the 2 valid replicates: a 0, b Jaccard {x} vs {y} = 1 -> (0 + 1) / 2
    assert s.pairwise_distance == [[0.0, 0.5], [0.5, 0.0]]
    # confidence = 2/3 valid * (1 - 0.5) = 0.33333 -> 0.3333
    assert s.confidence == 0.3333
    assert s.truncated is False and s.truncation_info is None


def test_numbers_within_epsilon_agree_and_report_median():
    data = ({"n": 10}, {"n": 11}, {"n": 12})
    # range 12 - 10 = 2 <= 0.2 * 12 = 2.4 -> agree; median 11 stays an int
    s = summarize(reps(*data), epsilon=0.2)
    assert s.consensus == {"n": 11}
    assert isinstance(s.consensus["n"], int)
    # with epsilon 0.1: 2 > 0.1 * 12 = 1.2 -> disagreement
    s = summarize(reps(*data), epsilon=0.1)
    assert s.consensus == {}
    assert s.disagreements[0].values == [10, 11, 12]


def test_float_consensus_median_and_exact_epsilon_zero():
    # 1.1 - 1.0 = 0.1 <= 0.2 * 1.1 = 0.22 -> agree; median of two = (1.0 + 1.1) / 2 = 1.05
    s = summarize(reps({"f": 1.0}, {"f": 1.1}))
    assert s.consensus["f"] == pytest.approx(1.05)
    assert summarize(reps({"f": 3}, {"f": 3.0}), epsilon=0).consensus == {"f": 3}
    assert summarize(reps({"f": 3}, {"f": 3.5}), epsilon=0).consensus == {}


def test_field_missing_in_one_replicate_disagrees():
    s = summarize(reps({"a": 1, "b": 2}, {"a": 1}))
    assert s.consensus == {"a": 1}
    assert s.disagreements[0].field == "b"
    assert s.disagreements[0].values == [2, None]


def test_categorical_consensus_is_type_aware():
    s = summarize(reps({"k": True, "s": "yes", "e": []}, {"k": 1, "s": "yes", "e": []}))
    assert s.consensus == {"s": "yes", "e": []}
    assert [d.field for d in s.disagreements] == ["k"]


def test_single_valid_replicate_everything_is_consensus():
    s = summarize(reps({"a": {"b": [1, "two"]}}, {"a": "bad"}, invalid={2}),
                  list_mode="ordered")
    assert s.consensus == {"a.b[0]": 1, "a.b[1]": "two"}
    assert summarize(reps({"a": {"b": [1, "two"]}})).consensus == {"a.b": [1, "two"]}
    assert s.disagreements == []
    assert s.pairwise_distance == [[0.0]]
    assert s.confidence == 0.5  # 1 valid of 2, agreement 1


def test_no_agreement_gives_empty_dict_not_none():
    s = summarize(reps({"a": 1}, {"a": 100}))
    assert s.consensus == {}
    # distance |1 - 100| / 100 = 0.99 -> confidence 1 * 0.01
    assert s.confidence == 0.01


def test_no_valid_replicates():
    s = summarize(reps({"a": 1}, {"a": 1}, invalid={1, 2}))
    assert s.consensus is None
    assert s.pairwise_distance == [] and s.distributions == {} and s.disagreements == []
    assert s.confidence == 0.0
    assert summarize([]).consensus is None


def test_text_replicates():
    s = summarize(reps("a b c", "b c d"))
    assert s.consensus == {}
    assert s.disagreements[0].field == "value"
    assert s.pairwise_distance[0][1] == pytest.approx(0.5)  # 1 - 2/4
    assert s.confidence == 0.5  # 2/2 * (1 - 0.5)


def test_confidence_three_of_four_valid():
    # valid: x = 10, 8, 10 -> distances 0.2, 0, 0.2; mean 0.4/3 = 0.13333..
    # confidence = 3/4 * (1 - 0.13333..) = 0.65
    s = summarize(reps({"x": 10}, {"x": 8}, {"x": 10}, {"x": 0}, invalid={4}))
    assert s.confidence == 0.65


def test_summary_serialises_to_plain_json():
    s = summarize(reps({"x": 1.5, "t": "hi", "b": True}, {"x": 2.5, "t": "ho", "b": True}))
    loaded = json.loads(s.model_dump_json())
    assert loaded["distributions"]["x"]["mean"] == 2.0
    assert BundleSummary.model_validate(loaded) == s


def test_negative_epsilon_rejected():
    with pytest.raises(ValueError):
        summarize(reps({"a": 1}), epsilon=-0.1)


# --- truncation ----------------------------------------------------------------------------


def test_max_fields_keeps_first_sorted_paths():
    s = summarize(
        reps({"c": 1, "a": 1, "b": 1}, {"c": 2, "a": 1, "b": 1}),
        limits=BundleLimits(max_fields=2),
    )
    assert list(s.distributions) == ["a", "b"]
    assert s.consensus == {"a": 1, "b": 1}
    assert s.disagreements == []  # "c" disagrees but was not analysed
    assert s.pairwise_distance[0][1] == pytest.approx(0.5 / 3)  # matrix still sees c: 1/2 / 3
    assert s.truncated is True
    info = s.truncation_info
    assert info["reasons"] == ["max_fields"]
    assert (info["fields_total"], info["fields_kept"]) == (3, 2)


def test_max_diffs_cuts_disagreements():
    s = summarize(
        reps({"a": 1, "b": 1, "c": 1}, {"a": 9, "b": 9, "c": 9}),
        limits=BundleLimits(max_diffs=1),
    )
    assert [d.field for d in s.disagreements] == ["a"]
    assert s.truncated is True
    info = s.truncation_info
    assert info["reasons"] == ["max_diffs"]
    assert (info["disagreements_total"], info["disagreements_kept"]) == (3, 1)


def test_max_bytes_drops_distributions_first():
    def data(r):
        return {f"f{i:02d}": f"replicate {r} says {'word ' * 20}{i}" for i in range(40)}

    s = summarize(reps(data(1), data(2), data(3)), limits=BundleLimits(max_bytes=4096))
    assert len(s.model_dump_json().encode()) <= 4096
    assert s.truncated is True
    info = s.truncation_info
    assert "max_bytes" in info["reasons"]
    assert info["max_bytes"] == 4096
    assert info["bytes_before"] > 4096 >= info["bytes_after"]
    assert info["dropped"]["distributions"] == 40  # all 40 gone before anything else
    assert info["dropped"]["disagreement_values"] > 0
    kept = [d.field for d in s.disagreements]
    assert kept == sorted(kept) and kept[0] == "f00"  # what is left is a prefix


def test_max_bytes_drops_only_what_is_needed():
    def data(r):
        return {f"f{i:02d}": float(i + r) for i in range(60)}

    full = summarize(reps(data(0), data(1)))
    size = len(full.model_dump_json().encode())
    limit = size - 1000
    s = summarize(reps(data(0), data(1)), limits=BundleLimits(max_bytes=limit))
    assert len(s.model_dump_json().encode()) <= limit
    dropped = s.truncation_info["dropped"]
    assert 0 < dropped["distributions"] < 60
    assert dropped["disagreement_values"] == dropped["disagreements"] == 0
    assert list(s.distributions) == [f"f{i:02d}" for i in range(60 - dropped["distributions"])]


def test_max_bytes_unreachable_keeps_matrix_and_stops():
    # 20 replicates -> a 20 x 20 matrix of long floats alone exceeds the 1,024 byte minimum
    datas = [{"x": 1 + i / 7, "same": "s" * 40} for i in range(20)]
    s = summarize(reps(*datas), limits=BundleLimits(max_bytes=1024))
    info = s.truncation_info
    assert s.truncated is True and "max_bytes" in info["reasons"]
    assert len(s.pairwise_distance) == 20
    assert s.distributions == {} and s.disagreements == [] and s.consensus == {}
    assert info["dropped"]["consensus"] == 1  # "same" agreed but had to go
    assert info["bytes_after"] == len(s.model_dump_json().encode()) > 1024


def test_summarize_10_replicates_of_1000_fields_stays_fast():
    """Regression guard only: ~40 ms measured on a loaded 2-core box; 1 s catches O(n^2)."""
    import random
    import time

    def data(seed):
        rnd = random.Random(seed)
        words = [f"w{i}" for i in range(200)]
        out = {f"num_{i:04d}": 100 + rnd.gauss(0, 10) for i in range(500)}
        out |= {f"txt_{i:04d}": " ".join(rnd.choices(words, k=12)) for i in range(500)}
        return out

    replicates = reps(*(data(i) for i in range(10)))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        summary = summarize(replicates)
        best = min(best, time.perf_counter() - start)
    assert len(summary.distributions) == 1000
    assert best < 1.0
