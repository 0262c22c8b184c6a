"""Per-field distributions over the valid replicates.

Numeric fields (every non-null value a finite int/float, not bool)::

    {"type": "numeric", "n", "missing", "mean", "std", "min", "max", "median", "integer",
     "ci95", "ci_method", "ci_coverage", "ci_clipped", "cv"}

``n`` counts the numbers; ``missing`` counts replicates where the field is absent or null.
``std`` uses ddof=1 (None when n < 2). ``ci95`` is the interval of ``intervals``: Student-t
of the mean for n >= 10, the exact order-statistic interval of the median for 2 <= n < 10
(``ci_coverage`` says how much it covers), ``[mean, mean]`` for n < 2; clipped to the schema's
minimum/maximum (``ci_clipped``). ``integer`` is true when every value is an int or the schema
says ``integer`` (then min, max and a whole median are ints). ``cv = std / |mean|``, None when
n < 2 or mean == 0.

Set fields (lists read as item sets): ``itemset.set_distribution`` -- per-item support with a
Wilson interval, consensus and majority items, mean pairwise Jaccard distance.

Every other field (booleans, strings, mixtures) is counted::

    {"type": "boolean" | "categorical", "n", "counts", "mode", "agreement", "agreement_ci95",
     "entropy"}

``counts`` is keyed by ``str(value)``, with ``"missing"`` for replicates lacking the field,
so ``n`` (= number of valid replicates) equals the sum of the counts. ``mode`` is the most
common value (ties go to the earliest replicate; None when "missing" wins),
``agreement = count(mode) / n`` with its Wilson 95% interval ``agreement_ci95``, and
``entropy`` is the Shannon entropy of the counts in bits divided by log2(number of distinct
values seen): 0 = unanimous, 1 = evenly split.

Statistics are computed with numpy for all numeric fields at once and with one vectorised
``scipy.special.entr`` pass for all categorical fields (the Shannon entropy that
``scipy.stats.entropy`` computes). ``scipy.special`` imports in ~0.3 s where ``scipy.stats``
takes ~1.5 s, which was a third of a cold start (docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from steer_tools.statistics._values import MISSING
from steer_tools.statistics.intervals import clip_interval, numeric_intervals, wilson
from steer_tools.statistics.itemset import path_template, set_distribution
from steer_tools.statistics.schema_info import FieldFacts
from steer_tools.statistics.table import EQUALITY, SET, FieldTable

_NO_FACTS = FieldFacts()


def distributions(table: FieldTable, n_fields: int,
                  facts: dict[str, FieldFacts] | None = None) -> dict[str, dict[str, Any]]:
    """Distributions of the first ``n_fields`` columns of ``table``, keyed by path in order;
    ``facts`` (``schema_info.schema_facts``) bound the numeric intervals."""
    kept = range(min(n_fields, len(table.paths)))
    numeric = [i for i in kept if i in table.stats_rows]
    sets = [i for i in kept if table.kinds[i] == SET]
    other = [i for i in kept if i not in table.stats_rows and table.kinds[i] != SET]
    found = {**_numeric(table, numeric, facts or {}), **_categorical(table, other)}
    for index in sets:
        found[index] = set_distribution(table.columns[index], table.set_distances.get(index))
    return {table.paths[i]: found[i] for i in kept}


def _numeric(table: FieldTable, indices: list[int],
             facts: dict[str, FieldFacts]) -> dict[int, dict[str, Any]]:
    if not indices:
        return {}
    rows = [table.stats_rows[i] for i in indices]
    values = table.matrix[rows]
    present = ~np.isnan(values)
    n = present.sum(axis=1)
    mean = np.where(present, values, 0.0).sum(axis=1) / n
    low = np.where(present, values, np.inf).min(axis=1)
    high = np.where(present, values, -np.inf).max(axis=1)
    deviation = np.where(present, values - mean[:, None], 0.0)
    std = np.sqrt((deviation**2).sum(axis=1) / np.maximum(n - 1, 1))
    constant = low == high  # exact results for equal values: no 1e-17 noise from summing
    std[constant] = 0.0
    mean[constant] = low[constant]
    median = np.nanmedian(values, axis=1)

    low_ci, high_ci, methods, coverage = numeric_intervals(values, n, mean, std)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = std / np.abs(mean)

    k = table.k
    columns = zip(
        indices,
        n.tolist(),
        mean.tolist(),
        std.tolist(),
        low.tolist(),
        high.tolist(),
        median.tolist(),
        low_ci.tolist(),
        high_ci.tolist(),
        methods,
        coverage.tolist(),
        cv.tolist(),
        table.all_int[rows].tolist(),
        strict=True,
    )
    out: dict[int, dict[str, Any]] = {}
    for index, count, mu, sd, lo, hi, med, ci_lo, ci_hi, method, cover, c, ints in columns:
        several = count >= 2
        fact = facts.get(path_template(table.paths[index]), _NO_FACTS) if facts else _NO_FACTS
        ci_lo, ci_hi, clipped = clip_interval(ci_lo, ci_hi, fact.minimum, fact.maximum)
        integer = ints or (fact.integer and float(lo).is_integer() and float(hi).is_integer())
        whole = integer and float(med).is_integer()
        out[index] = {
            "type": "numeric",
            "n": count,
            "missing": k - count,
            "mean": mu,
            "std": sd if several else None,
            "min": int(lo) if integer else lo,
            "max": int(hi) if integer else hi,
            "median": int(med) if whole else med,
            "integer": bool(integer),
            "ci95": [ci_lo, ci_hi],
            "ci_method": method,
            "ci_coverage": cover if method != "point" else None,
            "ci_clipped": clipped,
            "cv": c if several and mu != 0 else None,
        }
    return out


def _categorical(table: FieldTable, indices: list[int]) -> dict[int, dict[str, Any]]:
    if not indices:
        return {}
    counted: list[tuple[int, list[str], dict[str, int]]] = []
    for index in indices:
        keys = [
            "missing" if v is MISSING else v if type(v) is str else str(v)
            for v in table.columns[index]
        ]
        counts: dict[str, int] = {}
        for key in keys:  # a plain dict: Counter's overhead dominated for 10-value columns
            counts[key] = counts.get(key, 0) + 1
        counted.append((index, keys, counts))

    width = max(len(counts) for _, _, counts in counted)
    table_counts = np.zeros((len(counted), width))
    for row, (_, _, counts) in enumerate(counted):
        table_counts[row, : len(counts)] = list(counts.values())
    distinct = (table_counts > 0).sum(axis=1)
    probabilities = table_counts / table_counts.sum(axis=1, keepdims=True)
    bits = special.entr(probabilities).sum(axis=1) / np.log(2)
    normalised = np.where(distinct > 1, bits / np.log2(np.maximum(distinct, 2)), 0.0)

    out: dict[int, dict[str, Any]] = {}
    n = table.k
    for (index, keys, counts), entropy in zip(counted, normalised.tolist(), strict=True):
        column = table.columns[index]
        mode_key = max(counts, key=counts.__getitem__)  # ties: first seen, i.e. earliest replicate
        mode = column[keys.index(mode_key)]
        boolean = table.kinds[index] == EQUALITY and all(
            type(v) is bool for v in column if v is not MISSING
        )
        out[index] = {
            "type": "boolean" if boolean else "categorical",
            "n": n,
            "counts": counts,
            "mode": None if mode is MISSING else mode,
            "agreement": counts[mode_key] / n,
            "agreement_ci95": wilson(counts[mode_key], n),
            "entropy": entropy,
        }
    return out
