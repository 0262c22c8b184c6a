"""Lists as item sets, bounded and small-n intervals, Wilson intervals: every number below is
worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest

from steer_tools.bundle import BundleOptions
from steer_tools.statistics import pairwise_distance_matrix, replicate_distance, summarize
from steer_tools.statistics.flatten import flatten
from steer_tools.statistics.intervals import order_rank, wilson
from steer_tools.statistics.itemset import ItemSet
from tests.helpers.replicates import reps

RISKS = ({"risks": ["a", "b", "c"]}, {"risks": ["b", "a"]}, {"risks": ["a", "d"]})


def test_set_support_consensus_majority_and_jaccard():
    s = summarize(reps(*RISKS))
    d = s.distributions["risks"]
    # support: a in 3 of 3, b in 2, c and d in 1
    assert [(i["item"], i["support"]) for i in d["items"]] == [
        ("a", 3), ("b", 2), ("c", 1), ("d", 1)]
    assert d["consensus_items"] == ["a"]  # in every replicate
    assert d["majority_items"] == ["a", "b"]  # support * 2 > 3
    assert s.consensus == {"risks": ["a"]}
    assert [x.field for x in s.disagreements] == ["risks"]  # the lists are not all equal
    # Jaccard: r1-r2 1 - 2/3 = 1/3; r1-r3 1 - 1/4 = 3/4; r2-r3 1 - 1/3 = 2/3
    m = s.pairwise_distance
    assert (m[0][1], m[0][2], m[1][2]) == pytest.approx((1 / 3, 3 / 4, 2 / 3))
    # mean (1/3 + 3/4 + 2/3) / 3 = 21/36; confidence = 1 * (1 - 21/36) = 0.41667
    assert d["mean_jaccard_distance"] == pytest.approx(21 / 36)
    assert s.confidence == round(1 - 21 / 36, 4)
    assert d["mean_size"] == pytest.approx(7 / 3)


def test_same_items_in_another_order_agree_in_set_mode_only():
    a, b = {"risks": ["x", "y", "z"]}, {"risks": ["z", "x", "y"]}
    assert summarize(reps(a, b)).consensus == {"risks": ["x", "y", "z"]}
    assert summarize(reps(a, b)).confidence == 1.0
    ordered = summarize(reps(a, b), list_mode="ordered")
    assert ordered.consensus == {}  # risks[0..2] all differ by position
    assert ordered.confidence == 0.0
    # the tool option and per-field overrides choose the same way
    assert BundleOptions(list_mode={"risks": "ordered"}).list_mode == {"risks": "ordered"}
    assert summarize(reps(a, b), list_mode={"risks": "ordered"}).consensus == {}


def test_item_identity_multisets_and_early_stop_distance():
    # case and whitespace do not make a new item; repeats count (multiset Jaccard)
    assert ItemSet(["Vendor  lock-in"]) == ItemSet(["vendor lock-in"])
    # {a:2, b:1} vs {a:1, b:1}: sum(min) = 2, sum(max) = 3 -> 1 - 2/3
    assert ItemSet(["a", "a", "b"]).distance(ItemSet(["a", "b"])) == pytest.approx(1 / 3)
    assert ItemSet([1]) != ItemSet(["1"])  # type-aware
    assert ItemSet([]).distance(ItemSet([])) == 0.0
    # early stop (replicate_distance) and the matrix use the same list modes
    x, y = {"t": ["a", "b"], "n": 1}, {"t": ["b", "c"], "n": 1}
    # t: 1 - 1/3 = 2/3; n: 0 -> mean over 2 fields = 1/3
    assert replicate_distance(x, y) == pytest.approx(1 / 3)
    assert pairwise_distance_matrix([x, y])[0][1] == replicate_distance(x, y)


def test_arrays_of_objects_stay_positional_unless_marked():
    data = {"plans": [{"x": 1}, {"x": 2}], "tags": ["a"]}
    flat = flatten(data, "set")
    assert set(flat) == {"plans[0].x", "plans[1].x", "tags"}
    marked = flatten(data, {"plans": "set"})
    assert set(marked) == {"plans", "tags"} and isinstance(marked["plans"], ItemSet)
    # nested arrays of scalars inside objects are sets too: "plans[].tags"
    nested = flatten({"plans": [{"tags": ["b", "a"]}]}, "set")
    assert nested["plans[0].tags"] == ItemSet(["a", "b"])


def test_schema_annotation_chooses_the_list_mode():
    schema = {"type": "object", "properties": {
        "steps": {"type": "array", "items": {"type": "string"}, "list_mode": "ordered"},
        "tags": {"type": "array", "items": {"type": "string"}}}}
    s = summarize(reps({"steps": ["a", "b"], "tags": ["x", "y"]},
                       {"steps": ["b", "a"], "tags": ["y", "x"]}), schema=schema)
    assert s.consensus == {"tags": ["x", "y"]}  # steps compared by position: both differ
    assert [d.field for d in s.disagreements] == ["steps[0]", "steps[1]"]
    # an explicit tool option wins over the schema annotation
    s = summarize(reps({"steps": ["a", "b"]}, {"steps": ["b", "a"]}), schema=schema,
                  list_mode={"steps": "set"})
    assert s.consensus == {"steps": ["a", "b"]}


def test_wilson_interval_by_hand():
    z = 1.959963984540054  # Phi^-1(0.975)
    # 2 of 3: p = 2/3, denominator 1 + z^2/3 = 2.280486, centre (p + z^2/6) / 2.280486
    #   = (0.6666667 + 0.6402431) / 2.2804863 = 0.5730838; half-width
    #   z * sqrt(p(1-p)/3 + z^2/36) / 2.2804863 = z * sqrt(0.0740741 + 0.1067072) / 2.2804863
    #   = 0.3654242 -> [0.2076596, 0.9385081]
    assert wilson(2, 3) == pytest.approx([0.2076596, 0.9385081], abs=1e-7)
    # 0 of 5: centre = half = (z^2/10) / (1 + z^2/5) = 0.3841459 / 1.7682918 = 0.2172412
    assert wilson(0, 5) == pytest.approx([0.0, 2 * 0.2172412], abs=1e-7)
    assert wilson(5, 5) == pytest.approx([1 - 2 * 0.2172412, 1.0], abs=1e-7)
    assert z == pytest.approx(1.959964)
    stats = pytest.importorskip("scipy.stats")  # an independent implementation agrees
    ci = stats.binomtest(2, 3).proportion_ci(method="wilson")
    assert wilson(2, 3) == pytest.approx([ci.low, ci.high])
    d = summarize(reps({"x": "a"}, {"x": "a"}, {"x": "b"})).distributions["x"]
    assert d["agreement_ci95"] == pytest.approx(wilson(2, 3))


def test_order_statistic_interval_by_hand():
    # coverage of [x(j), x(n+1-j)] for the median = 1 - 2 P(Binomial(n, 1/2) <= j - 1)
    assert order_rank(2) == (1, 0.5)  # 1 - 2/4
    assert order_rank(5) == (1, 0.9375)  # 1 - 2/32: below 95%, the best there is
    assert order_rank(6) == (1, 0.96875)  # 1 - 2/64; j = 2 would cover 1 - 2*7/64 = 0.78
    # n = 9: j = 2 covers 1 - 2 * (1 + 9) / 512 = 0.9609375; j = 3: 1 - 2*46/512 = 0.82
    assert order_rank(9) == (2, 0.9609375)
    d = summarize(reps(*({"x": v} for v in [5, 1, 9, 3, 7, 2, 8, 4, 6]))).distributions["x"]
    assert d["ci95"] == [2.0, 8.0] and d["ci_method"] == "order-median"
    assert d["ci_coverage"] == 0.9609375 and d["integer"] is True and d["median"] == 5


def test_student_t_from_ten_values_by_hand():
    # 1..10: mean 5.5, variance 82.5 / 9 = 9.1666667, sd 3.0276504; t(0.975, 9) = 2.2621572
    # half-width 2.2621572 * 3.0276504 / sqrt(10) = 2.1658506 -> [3.3341494, 7.6658506]
    d = summarize(reps(*({"x": float(v)} for v in range(1, 11)))).distributions["x"]
    assert d["ci_method"] == "t-mean" and d["ci_coverage"] == 0.95
    assert d["ci95"] == pytest.approx([3.3341494, 7.6658506], abs=1e-7)
    assert d["integer"] is False


def test_interval_clipped_to_schema_bounds_and_integer_reported():
    schema = {"type": "object", "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "ratio": {"anyOf": [{"type": "number", "exclusiveMaximum": 1.0}, {"type": "null"}]}}}
    values = [0] * 9 + [10]
    # mean 1, variance (9 * 1 + 81) / 9 = 10, sd sqrt(10); half = 2.262157 * sqrt(10)/sqrt(10)
    # t interval [-1.262157, 3.262157] -> clipped at the schema minimum 0
    s = summarize(reps(*({"score": v, "ratio": 0.9 + v / 100} for v in values)), schema=schema)
    score = s.distributions["score"]
    assert score["ci95"] == pytest.approx([0.0, 3.262157], abs=1e-6)
    assert score["ci_clipped"] is True and score["integer"] is True
    # ratio: 0.9 x 9 and 1.0: mean 0.91, sd 0.0316228, half 0.0226216 -> [0.887378, 0.932622]
    ratio = s.distributions["ratio"]
    assert ratio["ci95"] == pytest.approx([0.887378, 0.932622], abs=1e-6)
    assert ratio["ci_clipped"] is False
    # a wider spread on the same field is cut at the exclusive maximum 1.0 (Optional keeps it)
    wide = summarize(reps(*({"ratio": r} for r in [0.1] * 9 + [0.99])), schema=schema)
    assert wide.distributions["ratio"]["ci95"][1] <= 1.0
    # without a schema nothing is clipped: the demo's "[-7.71, 17.7]" kind of interval
    assert summarize(reps(*({"score": v} for v in values))).distributions["score"][
        "ci95"][0] == pytest.approx(1 - 2.262157, abs=1e-6)
    assert math.isclose(2.262157 * math.sqrt(10) / math.sqrt(10), 2.262157)
