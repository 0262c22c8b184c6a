"""Distance between replicates, 0 (identical) .. 1 (nothing in common).

Per field, for two replicates that both have the field:

* numbers: ``|a - b| / max(|a|, |b|)`` clipped to 1 (0 when both are 0);
* strings: token-set (Jaccard) distance on lower-cased word tokens,
  ``1 - |A∩B| / |A∪B|`` (0 when both have no tokens);
* lists read as item sets (``itemset``): multiset Jaccard distance of their items;
* anything else (bools, nulls, categories, mixed types): 0 if equal else 1.

A field present in only one of the two counts 1. The replicate distance is the mean over
the union of both replicates' field paths (0 when both have no fields). A text replicate
(``data`` is a string) flattens to the single field ``"value"``, so its distance is the
token-set distance of the whole text.

``replicate_distance`` and ``pairwise_distance_matrix`` share one implementation, so the
engine's early-stop check and the bundle's matrix can never disagree. Numeric, categorical
and string fields are compared for every pair at once (numpy, scipy.sparse; see
``text_overlap``); only fields mixing types are compared pair by pair in Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steer_tools.statistics._values import MISSING, value_distance
from steer_tools.statistics.flatten import flatten
from steer_tools.statistics.itemset import set_distance_matrix
from steer_tools.statistics.table import (
    EQUALITY,
    MIXED,
    NUMERIC,
    SET,
    TEXT,
    FieldTable,
    build_table,
)
from steer_tools.statistics.text_overlap import overlap

_CHUNK_CELLS = 2_000_000  # caps the (fields, K, K) temporaries at ~16 MB each


def replicate_distance(a_data: Any, b_data: Any, list_mode: Any = "set") -> float:
    """Distance in [0, 1] between two replicates' ``data`` (JSON value or text)."""
    return pairwise_distance_matrix([a_data, b_data], list_mode)[0][1]


def pairwise_distance_matrix(datas: list[Any], list_mode: Any = "set") -> list[list[float]]:
    """Symmetric K x K matrix of replicate distances with a zero diagonal; ``list_mode`` as
    in ``summarize`` (arrays of scalars are item sets by default)."""
    return table_distance_matrix(build_table([flatten(data, list_mode) for data in datas]))


def table_distance_matrix(table: FieldTable) -> list[list[float]]:
    """Distance matrix of the replicates (columns' rows) held in ``table``."""
    k = table.k
    if k == 0:
        return []
    if k == 1:
        return [[0.0]]
    sums, union = _sums(table, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        full = np.where(union > 0, sums / np.maximum(union, 1), 0.0)
    upper = np.triu_indices(k, 1)
    matrix = np.zeros((k, k))  # the layout scipy's squareform builds, without its ~0.1 s import
    matrix[upper] = matrix[upper[::-1]] = np.clip(full[upper], 0.0, 1.0)
    return matrix.tolist()


def _sums(table: FieldTable, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of field distances and size of the field-path union for every replicate pair."""
    present = np.array(
        [[value is not MISSING for value in column] for column in table.columns], dtype=np.int64
    ).reshape(len(table.columns), k)
    both = present.T @ present
    sizes = np.diag(both)
    union = sizes[:, None] + sizes[None, :] - both
    sums = (union - both).astype(float)  # fields present in exactly one replicate count 1

    by_kind: dict[str, list[int]] = {NUMERIC: [], TEXT: [], EQUALITY: [], MIXED: [], SET: []}
    for index, kind in enumerate(table.kinds):
        by_kind[kind].append(index)
    sums += _numeric(table, by_kind[NUMERIC], k)
    sums += _equality(table, by_kind[EQUALITY], k)
    sums += _text(table, by_kind[TEXT], k)
    sums += _mixed(table, by_kind[MIXED], k)
    for index in by_kind[SET]:
        matrix = table.set_distances.get(index)
        if matrix is None:
            matrix = table.set_distances[index] = set_distance_matrix(table.columns[index])
        sums += matrix
    return sums, union.astype(float)


def _numeric(table: FieldTable, indices: list[int], k: int) -> np.ndarray:
    total = np.zeros((k, k))
    if not indices:
        return total
    values = table.matrix[[table.stats_rows[i] for i in indices]]
    step = max(1, _CHUNK_CELLS // (k * k))
    for start in range(0, len(values), step):
        block = values[start : start + step]
        magnitude = np.abs(block)
        diff = np.abs(block[:, :, None] - block[:, None, :])
        scale = np.maximum(magnitude[:, :, None], magnitude[:, None, :])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(scale == 0, 0.0, diff / scale)
        total += np.nansum(np.minimum(ratio, 1.0), axis=0)  # NaN = a side is missing
    return total


def _equality(table: FieldTable, indices: list[int], k: int) -> np.ndarray:
    if not indices:
        return np.zeros((k, k))
    codes = np.full((len(indices), k), -1, dtype=np.int64)
    for row, index in enumerate(indices):
        seen: dict[tuple[type, str], int] = {}
        for col, value in enumerate(table.columns[index]):
            if value is not MISSING:
                codes[row, col] = seen.setdefault((type(value), repr(value)), len(seen))
    known = codes >= 0
    differ = (codes[:, :, None] != codes[:, None, :]) & known[:, :, None] & known[:, None, :]
    return differ.sum(axis=0).astype(float)


def _text(table: FieldTable, indices: list[int], k: int) -> np.ndarray:
    """Jaccard distances summed over string fields (see ``text_overlap`` for the speed-up)."""
    total = np.zeros((k, k))
    if not indices:
        return total
    columns = [table.columns[i] for i in indices]
    texts = ["" if v is MISSING else v for column in columns for v in column]
    present = np.array([v is not MISSING for column in columns for v in column]).reshape(-1, k)
    sizes, inter = overlap(texts, k)
    left, right = np.triu_indices(k, 1)
    union = sizes[:, left] + sizes[:, right] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(union > 0, 1.0 - inter / np.maximum(union, 1), 0.0)
    distance = np.where(present[:, left] & present[:, right], distance, 0.0).sum(axis=0)
    total[left, right] = distance
    total[right, left] = distance
    return total


def _mixed(table: FieldTable, indices: list[int], k: int) -> np.ndarray:
    """Value-by-value comparison for fields mixing types (e.g. numbers and nulls)."""
    total = np.zeros((k, k))
    for index in indices:
        column = table.columns[index]
        for i in range(k):
            a = column[i]
            if a is MISSING:
                continue
            for j in range(i + 1, k):
                b = column[j]
                if b is MISSING:
                    continue
                d = value_distance(a, b)
                total[i, j] += d
                total[j, i] += d
    return total
