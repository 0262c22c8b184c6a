"""Drift between two runs of the same analysis: did the answers change beyond replicate noise?

Both runs are reduced to **samples** (``bundle_samples``): for every field, the values of the
valid replicates -- numbers, category labels, or the items of a set field per replicate.
``compare_samples`` then tests each field present in both runs:

* **numeric**: Welch's t test (unequal variances) when both runs have at least ``WELCH_MIN_N``
  (8) values and neither sample is skewed (``|sample skewness| <= 1``); otherwise the
  Mann-Whitney U test (two-sided; exact without ties at small n, normal approximation with tie
  and continuity correction otherwise, as ``scipy.stats.mannwhitneyu`` decides), which needs
  no normality -- bundles usually have 3-10 replicates;
* **categorical / boolean**: the 2 x C table of counts (run x value, ``"missing"`` included):
  Fisher's exact test when there are two values, the chi-square test of independence when
  there are more. Free text (more distinct values than half the replicates of both runs
  together) is not tested: every replicate words it differently;
* **set fields**: one row per item: the replicates containing it in each run form a 2 x 2
  table, tested with Fisher's exact test ("signal is weak but positive": 3 of 5 before, 0 of
  5 after). An item too rare to ever be significant -- even the most lopsided split of its
  total support between the runs would have p > alpha (Tarone's criterion: Fisher's test
  conditions on that total, so the filter does not bias it) -- is listed as ``too rare`` and
  not tested, so the many one-off items of LLM lists do not dilute the correction below.

A field that does not vary and is equal in both runs (or an item in every / no replicate of
both) is reported as ``identical`` and not tested. The p values of all tested rows are then
adjusted with **Holm's step-down correction** (``holm``) and a row is ``significant`` when its
adjusted p is at most ``alpha`` (0.05): the chance that any reported change is noise stays
below alpha however many fields a bundle has.

Pure functions. The tests are those of ``scipy.stats`` computed on ``scipy.special``
(``two_sample``), so a deployed run (a fresh process) does not pay ~1.5 s to import
``scipy.stats`` to compare itself with the previous run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from steer_tools.statistics._values import MISSING
from steer_tools.statistics.flatten import flatten
from steer_tools.statistics.itemset import ItemSet, item_key
from steer_tools.statistics.table import NUMERIC, SET, TEXT, build_table
from steer_tools.statistics.two_sample import (
    chi_square_p,
    fisher_2x2_p,
    mann_whitney_p,
    welch_p,
)

ALPHA = 0.05
WELCH_MIN_N = 8
MAX_SKEW = 1.0
MAX_FIELDS = 200


@dataclass
class DriftRow:
    field: str
    before: str
    after: str
    test: str
    p: float | None = None
    p_holm: float | None = None
    significant: bool = False
    item: Any = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bundle_samples(datas: list[Any], list_mode: Any = "set",
                   max_fields: int = MAX_FIELDS) -> dict[str, dict[str, Any]]:
    """``{field: {"type", "values"}}`` of the valid replicates' ``datas`` (JSON-safe, so it
    can be stored with a run and compared by the next one)."""
    table = build_table([flatten(data, list_mode) for data in datas])
    samples: dict[str, dict[str, Any]] = {}
    for index, path in enumerate(table.paths[:max_fields]):
        column = table.columns[index]
        if table.kinds[index] == NUMERIC:
            values: list[Any] = [v for v in column if v is not None and not _missing(v)]
            samples[path] = {"type": "numeric", "values": values}
        elif table.kinds[index] == SET:
            samples[path] = {"type": "set", "values": [
                v.as_list() if isinstance(v, ItemSet) else None for v in column]}
        else:
            present = [v for v in column if not _missing(v)]
            kind = "boolean" if present and all(type(v) is bool for v in present) else \
                "text" if table.kinds[index] == TEXT else "categorical"
            samples[path] = {"type": kind, "values": [
                "missing" if _missing(v) else v if type(v) is str else str(_plain(v))
                for v in column]}
    return samples


def _missing(value: Any) -> bool:
    return value is MISSING


def _plain(value: Any) -> Any:
    return value.as_list() if isinstance(value, ItemSet) else value


def compare_samples(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]],
                    alpha: float = ALPHA) -> list[DriftRow]:
    """One row per compared field (per item for set fields), Holm-adjusted; see the module
    docstring. Fields present in only one run are not compared."""
    rows: list[DriftRow] = []
    for field in sorted(set(before) & set(after)):
        a, b = before[field], after[field]
        kinds = {a.get("type"), b.get("type")}
        if kinds == {"numeric"}:
            rows.append(numeric_row(field, a["values"], b["values"]))
        elif kinds == {"set"}:
            rows.extend(set_rows(field, a["values"], b["values"], alpha))
        elif kinds <= {"categorical", "boolean", "text"}:
            row = categorical_row(field, a["values"], b["values"])
            if row is not None:
                rows.append(row)
    holm_rows(rows, alpha)
    return rows


def numeric_row(field: str, x: list[float], y: list[float]) -> DriftRow:
    before, after = _describe_numbers(x), _describe_numbers(y)
    if len(x) < 2 or len(y) < 2:
        return DriftRow(field, before, after, "too few values")
    if len(set(x)) == 1 and set(x) == set(y):
        return DriftRow(field, before, after, "identical")
    welch = min(len(x), len(y)) >= WELCH_MIN_N and all(
        abs(_skewness(sample)) <= MAX_SKEW for sample in (x, y))
    if welch:
        return DriftRow(field, before, after, "welch-t", welch_p(x, y))
    return DriftRow(field, before, after, "mann-whitney", mann_whitney_p(x, y))


def categorical_row(field: str, x: list[str], y: list[str]) -> DriftRow | None:
    values = list(dict.fromkeys([*x, *y]))
    before, after = _describe_labels(x), _describe_labels(y)
    if len(values) == 1:
        return DriftRow(field, before, after, "identical")
    if len(values) * 2 > len(x) + len(y):
        return None  # free text: nearly every replicate says it differently
    table = [[x.count(v) for v in values], [y.count(v) for v in values]]
    if len(values) == 2:
        return DriftRow(field, before, after, "fisher-exact", fisher_2x2_p(table))
    return DriftRow(field, before, after, "chi-square", chi_square_p(table))


def set_rows(field: str, x: list[list[Any] | None], y: list[list[Any] | None],
             alpha: float = ALPHA) -> list[DriftRow]:
    """Per item: replicates containing it, before vs after (Fisher's exact test)."""
    support_x, labels = _support(x, {})
    support_y, labels = _support(y, labels)
    n_x, n_y = len(x), len(y)
    rows = []
    for key, label in labels.items():
        a, c = support_x.get(key, 0), support_y.get(key, 0)
        before, after = f"{a}/{n_x}", f"{c}/{n_y}"
        if (a == n_x and c == n_y) or (a == 0 and c == 0):
            rows.append(DriftRow(field, before, after, "identical", item=label))
            continue
        if min_fisher_p(a + c, n_x, n_y) > alpha:
            rows.append(DriftRow(field, before, after, "too rare", item=label))
            continue
        p = fisher_2x2_p([[a, n_x - a], [c, n_y - c]])
        rows.append(DriftRow(field, before, after, "fisher-exact", p, item=label))
    return rows


def min_fisher_p(total: int, n_x: int, n_y: int) -> float:
    """Smallest two-sided Fisher p any split of ``total`` supporting replicates between runs
    of ``n_x`` and ``n_y`` replicates can have: the p of the most lopsided table."""
    extremes = {min(total, n_x), max(0, total - n_y)}
    return min(fisher_2x2_p([[a, n_x - a], [total - a, n_y - total + a]]) for a in extremes)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p values, in the input order.

    Sorted ascending, ``p_(i)`` (1-based) becomes ``min(1, max_{j<=i} (m - j + 1) * p_(j))``.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def holm_rows(rows: list[DriftRow], alpha: float = ALPHA) -> None:
    tested = [row for row in rows if row.p is not None]
    for row, adjusted in zip(tested, holm([row.p for row in tested]), strict=True):
        row.p_holm = adjusted
        row.significant = adjusted <= alpha


def changed_fields(rows: list[DriftRow]) -> list[str]:
    return list(dict.fromkeys(row.field for row in rows if row.significant))


def _support(values: list[list[Any] | None], labels: dict[str, Any],
             ) -> tuple[dict[str, int], dict[str, Any]]:
    support: dict[str, int] = {}
    for items in values:
        for key in {item_key(item): None for item in items or []}:
            support[key] = support.get(key, 0) + 1
        for item in items or []:
            labels.setdefault(item_key(item), item)
    return support, labels


def _skewness(sample: list[float]) -> float:
    """Sample skewness g1 = m3 / m2^1.5 (0 for constant samples)."""
    n = len(sample)
    mean = sum(sample) / n
    m2 = sum((v - mean) ** 2 for v in sample) / n
    m3 = sum((v - mean) ** 3 for v in sample) / n
    return 0.0 if m2 == 0 else m3 / math.pow(m2, 1.5)


def _describe_numbers(values: list[float]) -> str:
    if not values:
        return "n=0"
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return f"median {median:.4g} (n={len(values)})"


def _describe_labels(values: list[str]) -> str:
    if not values:
        return "n=0"
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    mode = max(counts, key=counts.__getitem__)
    return f"{mode} {counts[mode]}/{len(values)}"
