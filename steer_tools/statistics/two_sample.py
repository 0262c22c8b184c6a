"""Two-sample tests for drift, on ``scipy.special`` distribution functions.

Same definitions and p values as ``scipy.stats`` (``ttest_ind(equal_var=False)``,
``mannwhitneyu(method="auto")``, ``fisher_exact`` for 2 x 2, ``chi2_contingency`` without
Yates' correction for larger tables; ``tests/unit/test_statistics_drift.py`` checks both).
Why not call ``scipy.stats``: importing it costs ~1.5 s of CPU, and every deployed run is a
new process that would pay it whenever it has a previous run to compare with; the tests are
a few lines each on ``stdtr``, ``ndtr`` and ``chdtrc``, which ``scipy.special`` already has
loaded for the bundle statistics.
"""

from __future__ import annotations

import math
from functools import cache

from scipy import special

_EXACT_MAX_N = 8  # scipy's "auto": exact Mann-Whitney when a sample has <= 8 values, no ties
_RELATIVE_TOLERANCE = 1 + 1e-7  # scipy's tolerance when summing "as or more extreme" tables


def welch_p(x: list[float], y: list[float]) -> float:
    """Two-sided p of Welch's unequal-variance t test."""
    nx, ny = len(x), len(y)
    mx, my = sum(x) / nx, sum(y) / ny
    vx = sum((v - mx) ** 2 for v in x) / (nx - 1) / nx
    vy = sum((v - my) ** 2 for v in y) / (ny - 1) / ny
    if vx + vy == 0:
        return 1.0 if mx == my else 0.0
    t = (mx - my) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (nx - 1) + vy**2 / (ny - 1))
    return float(min(1.0, 2 * special.stdtr(df, -abs(t))))


def mann_whitney_p(x: list[float], y: list[float]) -> float:
    """Two-sided p of the Mann-Whitney U test: exact when a sample has at most 8 values and
    there are no ties, else the normal approximation with tie and continuity correction."""
    nx, ny = len(x), len(y)
    ranks = _ranks([*x, *y])
    u1 = sum(ranks[:nx]) - nx * (nx + 1) / 2
    u = max(u1, nx * ny - u1)
    n = nx + ny
    ties = _tie_counts([*x, *y])
    if min(nx, ny) <= _EXACT_MAX_N and not ties:
        at_least = _u_counts(nx, ny)  # arrangements by U; P(U >= u) by symmetry
        tail = sum(at_least[int(round(u)):]) / math.comb(n, nx)
        return min(1.0, 2 * tail)
    tie_term = sum(t**3 - t for t in ties) / (n * (n - 1))
    sigma = math.sqrt(nx * ny / 12 * ((n + 1) - tie_term))
    if sigma == 0:
        return 1.0
    z = (u - nx * ny / 2 - 0.5) / sigma
    return float(min(1.0, 2 * special.ndtr(-z)))


def fisher_2x2_p(table: list[list[int]]) -> float:
    """Two-sided p of Fisher's exact test: the probability, with the margins fixed, of every
    table at most as likely as the observed one (hypergeometric)."""
    (a, b), (c, d) = table
    row, col, n = a + b, a + c, a + b + c + d
    total = math.comb(n, row)

    def probability(k: int) -> float:
        return math.comb(col, k) * math.comb(n - col, row - k) / total

    observed = probability(a)
    low, high = max(0, row + col - n), min(row, col)
    return min(1.0, sum(p for k in range(low, high + 1)
                        if (p := probability(k)) <= observed * _RELATIVE_TOLERANCE))


def chi_square_p(table: list[list[int]]) -> float:
    """p of Pearson's chi-square test of independence (no continuity correction; meant for
    tables larger than 2 x 2)."""
    rows = [sum(r) for r in table]
    cols = [sum(c) for c in zip(*table, strict=True)]
    n = sum(rows)
    statistic = sum((table[i][j] - rows[i] * cols[j] / n) ** 2 / (rows[i] * cols[j] / n)
                    for i in range(len(rows)) for j in range(len(cols))
                    if rows[i] and cols[j])
    dof = (sum(1 for r in rows if r) - 1) * (sum(1 for c in cols if c) - 1)
    return float(special.chdtrc(dof, statistic)) if dof > 0 else 1.0


def _ranks(values: list[float]) -> list[float]:
    """Average ranks (1-based), ties sharing the mean of their positions."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _tie_counts(values: list[float]) -> list[int]:
    counts: dict[float, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return [c for c in counts.values() if c > 1]


@cache
def _u_counts(nx: int, ny: int) -> tuple[int, ...]:
    """Number of the C(nx+ny, nx) rank arrangements with each value of U (0..nx*ny):
    f(m, n, u) = f(m-1, n, u-n) + f(m, n-1, u)."""
    if nx == 0 or ny == 0:
        return (1,)
    with_last_x = _u_counts(nx - 1, ny)  # the largest value is from x: it beats all ny
    with_last_y = _u_counts(nx, ny - 1)
    counts = [0] * (nx * ny + 1)
    for u, count in enumerate(with_last_x):
        counts[u + ny] += count
    for u, count in enumerate(with_last_y):
        counts[u] += count
    return tuple(counts)
