"""95% intervals that respect what is known: sample size, the schema's bounds, proportions.

Numeric fields (``numeric_intervals``), chosen by the number ``n`` of values:

* ``n < 2``: no interval, ``[mean, mean]`` (method ``"point"``);
* ``2 <= n < SMALL_N`` (10): the **distribution-free order-statistic interval of the
  median**, ``[x(j), x(n+1-j)]`` of the sorted values with the largest ``j`` whose exact
  coverage ``1 - 2 * P(Binomial(n, 1/2) <= j - 1)`` is at least 95% (method
  ``"order-median"``). For ``n <= 5`` no pair of order statistics reaches 95%, so the interval
  is ``[min, max]`` and ``ci_coverage`` states the exact coverage it has
  (``1 - 2**(1-n)``: 0.5, 0.75, 0.875, 0.9375 for n = 2..5). Student's t is not used there:
  with 2-4 values ``t.ppf(0.975, n-1)`` is 12.7, 4.3, 3.2, so one unlucky spread produces
  intervals far outside anything observed (a 0-10 score got [-7.7, 17.7]), and its coverage
  rests on normality that 3 bounded integers cannot show. A percentile bootstrap was the
  other candidate; with n < 10 it has few distinct resamples and under-covers, and it is
  random, so the exact interval was chosen;
* ``n >= SMALL_N``: Student's t interval of the mean, ``mean ± t.ppf(0.975, n-1) * sd/√n``
  (method ``"t-mean"``, coverage 0.95), computed for every field at once.

Every numeric interval is then **clipped** to the schema's ``minimum``/``maximum`` (exclusive
bounds clip to the bound itself) and flagged ``ci_clipped``; a field whose values are all ints
(or whose schema type is ``integer``) is reported ``integer: true``.

Proportions (a categorical field's agreement, a set item's share) get the **Wilson score
interval** (``wilson``), which stays inside [0, 1] and behaves at 0/n and n/n, unlike the
normal approximation.

Only ``scipy.special`` is used (``bdtr``, ``stdtrit``, ``ndtri``: the binomial CDF, inverse
Student-t and inverse normal CDFs behind ``scipy.stats``): ``scipy.stats`` costs ~1.5 s to
import, a third of a cold start (docs/performance.md).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from scipy import special

LEVEL = 0.95
SMALL_N = 10


@cache
def _z() -> float:
    return float(special.ndtri(0.5 + LEVEL / 2))


def wilson(successes: int, n: int) -> list[float]:
    """Wilson score 95% interval of the proportion ``successes / n`` ([0, 1] when n = 0)."""
    if n <= 0:
        return [0.0, 1.0]
    z = _z()
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return [max(0.0, centre - half), min(1.0, centre + half)]


@cache
def order_rank(n: int) -> tuple[int, float]:
    """``(j, coverage)`` of the median interval ``[x(j), x(n+1-j)]`` for ``n`` values."""
    best_j, best_coverage = 1, 1.0 - 2.0 * float(special.bdtr(0, n, 0.5))
    for j in range(2, n // 2 + 1):
        coverage = 1.0 - 2.0 * float(special.bdtr(j - 1, n, 0.5))
        if coverage < LEVEL:
            break
        best_j, best_coverage = j, coverage
    return best_j, best_coverage


def numeric_intervals(values: np.ndarray, n: np.ndarray, mean: np.ndarray, std: np.ndarray,
                      ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Intervals for every row of ``values`` (NaN = missing); returns
    ``(low, high, methods, coverage)``, see the module docstring."""
    low = mean.copy()
    high = mean.copy()
    methods = ["point"] * len(n)
    coverage = np.zeros(len(n))
    large = n >= SMALL_N
    if large.any():
        sizes, where = np.unique(n[large], return_inverse=True)
        with np.errstate(invalid="ignore"):
            t_crit = special.stdtrit(sizes - 1, 0.5 + LEVEL / 2)[where]
        half = t_crit * std[large] / np.sqrt(n[large])
        low[large] = mean[large] - half
        high[large] = mean[large] + half
        coverage[large] = LEVEL
        for row in np.flatnonzero(large).tolist():
            methods[row] = "t-mean"
    small = (n >= 2) & ~large
    if small.any():
        ordered = np.sort(values[small], axis=1)  # NaN sorts last: row i's values come first
        rows = np.flatnonzero(small)
        for position, (row, size) in enumerate(zip(rows.tolist(), n[small].tolist(),
                                                   strict=True)):
            j, cover = order_rank(size)
            low[row] = ordered[position, j - 1]
            high[row] = ordered[position, size - j]
            coverage[row] = cover
            methods[row] = "order-median"
    return low, high, methods, coverage


def clip_interval(low: float, high: float, minimum: float | None, maximum: float | None,
                  ) -> tuple[float, float, bool]:
    """Clip ``[low, high]`` to the schema's bounds; the flag says whether anything was cut."""
    clipped = False
    if minimum is not None and low < minimum:
        low, clipped = minimum, True
    if maximum is not None and high > maximum:
        high, clipped = maximum, True
    if minimum is not None and high < minimum:
        high, clipped = minimum, True
    if maximum is not None and low > maximum:
        low, clipped = maximum, True
    return low, high, clipped


def interval_text(dist: dict[str, Any]) -> str:
    """A numeric distribution's interval as a person reads it, saying what it is:
    ``CI of the median [5, 8] (exact coverage 93.8%, clipped to schema bounds, integer)``."""
    low, high = dist["ci95"]
    method = dist.get("ci_method")
    notes = []
    if method == "order-median":
        label = "CI of the median"
        notes.append(f"exact coverage {dist['ci_coverage']:.1%}")
    elif method == "t-mean":
        label = "95% CI of the mean"
    else:
        label = "interval"
        notes.append("one value")
    if dist.get("ci_clipped"):
        notes.append("clipped to schema bounds")
    if dist.get("integer"):
        notes.append("integer")
    suffix = f" ({', '.join(notes)})" if notes else ""
    return f"{label} [{low:.4g}, {high:.4g}]{suffix}"
