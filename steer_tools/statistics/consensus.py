"""Consensus: the fields on which every valid replicate gives the same answer.

A field is in the consensus when ALL valid replicates have it and agree:

* numbers agree when ``max - min <= epsilon * max(|values|)`` (relative tolerance, so
  ``epsilon=0`` demands equality); the consensus value is the median, kept an int when
  every value is an int and the median is whole;
* anything else agrees only when the values are identical (type-aware: ``True != 1``).

A **set field** (a list read as an item set, see ``itemset``) is in the consensus with the
items every valid replicate has, when there is at least one (or when all lists are equal,
e.g. all empty); it is also a disagreement unless all replicates list the same items.

Every other field is a disagreement. The caller passes only valid replicates; with one
valid replicate every field is consensus. This module returns ``None`` only for zero
replicates -- an empty dict means "replicates exist but agree on nothing" (0.3.2 returned
None whenever 2+ replicates were valid, which hid every consensus).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steer_tools.statistics._values import MISSING, same_value
from steer_tools.statistics.itemset import common_items, plain
from steer_tools.statistics.table import NUMERIC, SET, FieldTable


def find_consensus(
    table: FieldTable, n_fields: int, epsilon: float
) -> tuple[dict[str, Any] | None, list[int]]:
    """Return ``(consensus, disagreeing column indices)`` over the first ``n_fields`` columns.

    Indices rather than ``Disagreement`` objects are returned so the caller builds models
    only for the disagreements it keeps after ``max_diffs``.
    """
    if table.k == 0:
        return None, []
    kept = range(min(n_fields, len(table.paths)))
    numeric = [i for i in kept if table.kinds[i] == NUMERIC]
    agreed_numbers = _numeric_agreement(table, numeric, epsilon)

    consensus: dict[str, Any] = {}
    disagreeing: list[int] = []
    for index in kept:
        if index in agreed_numbers:
            consensus[table.paths[index]] = agreed_numbers[index]
            continue
        column = table.columns[index]
        if table.kinds[index] == SET:
            common = common_items(column)
            identical = _identical(column)
            if common or identical:
                consensus[table.paths[index]] = common
            if not identical:
                disagreeing.append(index)
            continue
        if table.kinds[index] != NUMERIC and _identical(column):
            consensus[table.paths[index]] = plain(column[0])
        else:
            disagreeing.append(index)
    return consensus, disagreeing


def disagreement_values(table: FieldTable, index: int) -> list[Any]:
    """Per-replicate values of one column, with None where the replicate lacks the field."""
    return [None if value is MISSING else plain(value) for value in table.columns[index]]


def _identical(column: list[Any]) -> bool:
    first = column[0]
    if first is MISSING:
        return False
    return all(value is first or same_value(first, value) for value in column[1:])


def _numeric_agreement(table: FieldTable, indices: list[int], epsilon: float) -> dict[int, Any]:
    """Vectorised tolerance check for numeric columns; returns ``{index: median}`` if agreed."""
    if not indices:
        return {}
    rows = [table.stats_rows[i] for i in indices]
    values = table.matrix[rows]
    complete = ~np.isnan(values).any(axis=1)
    filled = np.where(np.isnan(values), 0.0, values)
    low = filled.min(axis=1)
    high = filled.max(axis=1)
    scale = np.maximum(np.abs(low), np.abs(high))
    agree = complete & ((high - low) <= epsilon * scale)
    median = np.median(filled, axis=1)
    ints = table.all_int[rows]
    out: dict[int, Any] = {}
    for index, ok, med, is_int in zip(
        indices, agree.tolist(), median.tolist(), ints.tolist(), strict=True
    ):
        if ok:
            out[index] = int(med) if is_int and med.is_integer() else med
    return out
