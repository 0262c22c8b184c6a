"""Drift tests between two runs' samples, each checked against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
from scipy import special

from steer_tools.statistics.drift import (
    bundle_samples,
    categorical_row,
    changed_fields,
    compare_samples,
    holm,
    min_fisher_p,
    numeric_row,
    set_rows,
)


def test_mann_whitney_exact_for_small_samples_without_ties():
    # [1,2,3] vs [4,5,6]: U = 0, the most extreme of C(6,3) = 20 equally likely rank splits;
    # two-sided exact p = 2 * 1/20 = 0.1
    row = numeric_row("score", [1, 2, 3], [4, 5, 6])
    assert row.test == "mann-whitney" and row.p == pytest.approx(0.1)
    assert (row.before, row.after) == ("median 2 (n=3)", "median 5 (n=3)")


def test_mann_whitney_normal_approximation_with_ties():
    x, y = [6, 7, 6, 5, 6], [9, 9, 9, 9, 9]
    # ranks: 5 -> 1; the three 6s -> 3; 7 -> 5; the five 9s -> 8. R_x = 15, U = 15 - 15 = 0
    # mean U = 5*5/2 = 12.5; tie-corrected variance = 25/12 * (11 - (24 + 120) / 90) = 19.583333
    # z = (12.5 - 0.5) / sqrt(19.583333) = 2.711677 (continuity correction 0.5)
    z = (12.5 - 0.5) / math.sqrt(25 / 12 * (11 - 144 / 90))
    assert z == pytest.approx(2.711677, abs=1e-6)
    row = numeric_row("score", x, y)
    assert row.test == "mann-whitney"
    assert row.p == pytest.approx(math.erfc(z / math.sqrt(2)))  # two-sided normal tail
    assert row.p == pytest.approx(0.006694, abs=1e-6)


def test_welch_t_for_eight_symmetric_values_each():
    x, y = [1, 2, 3, 4, 5, 6, 7, 8], [3, 4, 5, 6, 7, 8, 9, 10]
    # means 4.5 and 6.5, variances 42/7 = 6 each; se = sqrt(6/8 + 6/8) = 1.2247449
    # t = -2 / 1.2247449 = -1.6329932; Welch df = 1.5^2 / (2 * 0.75^2 / 7) = 14
    t, df = -2 / math.sqrt(1.5), 1.5**2 / (2 * 0.75**2 / 7)
    assert (t, df) == pytest.approx((-1.6329932, 14.0))
    row = numeric_row("score", x, y)
    assert row.test == "welch-t"
    assert row.p == pytest.approx(2 * special.stdtr(14, t))  # the t table's two tails
    assert row.p == pytest.approx(0.124750, abs=1e-6)
    # one skewed sample (g1 > 1) sends the same sizes to Mann-Whitney
    assert numeric_row("score", x, [1, 1, 1, 1, 1, 1, 1, 20]).test == "mann-whitney"


def test_identical_and_too_short_numeric_samples_are_not_tested():
    assert numeric_row("n", [3, 3, 3], [3, 3]).test == "identical"
    assert numeric_row("n", [3], [4, 5]).test == "too few values"
    assert numeric_row("n", [3], [4, 5]).p is None


def test_fisher_exact_for_two_categories():
    # True 4/5 before, 0/5 after: table [[4, 1], [0, 5]], margins 5/5, 4/6, N = 10.
    # P(a) = C(4, a) C(6, 5 - a) / C(10, 5): P(4) = 6/252, P(0) = 6/252, P(1..3) larger,
    # two-sided p = 12/252 = 0.047619
    row = categorical_row("feasible", ["True"] * 4 + ["False"], ["False"] * 5)
    assert row.test == "fisher-exact" and row.p == pytest.approx(12 / 252)
    assert (row.before, row.after) == ("True 4/5", "False 5/5")


def test_chi_square_for_more_categories():
    # [[4, 1, 0], [0, 1, 4]]: expected [[2, 1, 2], [2, 1, 2]];
    # X^2 = 4/2 + 0 + 4/2 + 4/2 + 0 + 4/2 = 8 on 2 df, p = exp(-8/2) = 0.0183156
    row = categorical_row("level", ["a"] * 4 + ["b"], ["b"] + ["c"] * 4)
    assert row.test == "chi-square" and row.p == pytest.approx(math.exp(-4))
    assert categorical_row("note", list("abcde"), list("fghij")) is None  # free text


def test_set_items_by_support_with_fisher():
    before = [["signal is weak but positive", "a", "b"], ["signal is weak but positive", "A"],
              ["Signal is weak but positive", "a", "b"], ["a", "b"], ["a", "b"]]
    after = [["a"], ["a"], ["a"], ["a"], ["a", "c"]]
    rows = {r.item: r for r in set_rows("risks", before, after)}
    # b: 4 of 5 before, 0 of 5 after: [[4, 1], [0, 5]]; P(a) = C(4, a) C(6, 5 - a) / C(10, 5):
    # P(4) = P(0) = 6/252, the others larger: two-sided p = 12/252
    b = rows["b"]
    assert (b.before, b.after, b.test) == ("4/5", "0/5", "fisher-exact")
    assert b.p == pytest.approx(12 / 252)
    # "signal is weak but positive" 3/5 -> 0/5: even this most lopsided split of 3 supporting
    # replicates has p = (21 + 21)/252 = 1/6 > 0.05 (P(3) = C(3,3) C(7,2)/252 = 21/252):
    # it can never be significant, so it is not tested (Tarone) and does not dilute Holm
    weak = rows["signal is weak but positive"]
    assert (weak.before, weak.after, weak.test, weak.p) == ("3/5", "0/5", "too rare", None)
    assert min_fisher_p(3, 5, 5) == pytest.approx(1 / 6)
    assert min_fisher_p(4, 5, 5) == pytest.approx(12 / 252)
    assert min_fisher_p(1, 5, 5) == 1.0 and rows["c"].test == "too rare"
    assert rows["a"].test == "identical" and rows["a"].p is None  # in every replicate of both


def test_holm_step_down_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 -> x4 = 0.04, x3 = 0.09, x2 = 0.08 -> max(0.09, 0.08) =
    # 0.09 (monotone), x1 = 0.5; back in input order:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


def test_compare_samples_applies_holm_over_all_tested_rows():
    before = bundle_samples([{"score": v, "ok": True, "tags": ["x"]} for v in [1, 2, 3, 4, 5]])
    after = bundle_samples([{"score": v, "ok": True, "tags": ["x"]} for v in [6, 7, 8, 9, 10]])
    assert before["tags"] == {"type": "set", "values": [["x"]] * 5}
    rows = compare_samples(before, after)
    tested = [r for r in rows if r.p is not None]
    # ok and tags are identical (not tested): m = 1, so Holm leaves score's p alone:
    # exact U = 0 of C(10,5) = 252 splits, two-sided p = 2/252
    assert [r.field for r in tested] == ["score"]
    assert tested[0].p == pytest.approx(2 / 252) and tested[0].p_holm == tested[0].p
    assert changed_fields(rows) == ["score"]
    # the same p among four tests is multiplied by 4 (smallest) -> 0.0317 still significant
    many = compare_samples({**before, **{f"f{i}": before["score"] for i in range(3)}},
                           {**after, **{f"f{i}": before["score"] for i in range(3)}})
    score = next(r for r in many if r.field == "score")
    assert score.p_holm == pytest.approx(min(1.0, 4 * 2 / 252)) and score.significant


def test_two_sample_tests_agree_with_scipy_stats():
    """two_sample computes scipy.stats' p values on scipy.special (no 1.5 s import in runs)."""
    import random

    stats = pytest.importorskip("scipy.stats")
    from steer_tools.statistics.two_sample import (
        chi_square_p,
        fisher_2x2_p,
        mann_whitney_p,
        welch_p,
    )

    rng = random.Random(7)
    for _ in range(40):
        nx, ny = rng.randint(2, 12), rng.randint(2, 12)
        ties = rng.random() < 0.5
        draw = (lambda: rng.randint(0, 6)) if ties else (lambda: rng.gauss(0, 1))
        x, y = [draw() for _ in range(nx)], [draw() + 1 for _ in range(ny)]
        if len(set(x) | set(y)) > 1:
            expected = stats.mannwhitneyu(x, y, alternative="two-sided").pvalue
            assert mann_whitney_p(x, y) == pytest.approx(expected, rel=1e-9, abs=1e-12)
        if len(set(x)) > 1 or len(set(y)) > 1:
            expected = stats.ttest_ind(x, y, equal_var=False).pvalue
            assert welch_p(x, y) == pytest.approx(expected, rel=1e-9)
        a, c = rng.randint(0, nx), rng.randint(0, ny)
        expected = stats.fisher_exact([[a, nx - a], [c, ny - c]]).pvalue
        assert fisher_2x2_p([[a, nx - a], [c, ny - c]]) == pytest.approx(expected, rel=1e-9)
        table = [[rng.randint(1, 6) for _ in range(3)] for _ in range(2)]
        expected = stats.chi2_contingency(table).pvalue
        assert chi_square_p(table) == pytest.approx(expected, rel=1e-9)
