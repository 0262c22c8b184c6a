"""K replicates -> ``BundleSummary``: the single entry point the engine and tools call.

Only valid replicates (``quality.valid``) feed consensus, disagreements, distributions and
the distance matrix -- a replicate that failed validation says nothing about the answer;
all replicates count towards the validity ratio inside ``confidence``.

Limits (``BundleLimits``) keep the summary readable; hitting any sets ``truncated`` and
``truncation_info``:

* more field paths than ``max_fields``: the first ``max_fields`` paths in sorted order get
  distributions and consensus/disagreement analysis (the distance matrix always uses every
  field, so it matches ``replicate_distance``); info ``fields_total`` / ``fields_kept``;
* more disagreements than ``max_diffs``: the first ``max_diffs`` in field order are listed;
  info ``disagreements_total`` / ``disagreements_kept``;
* JSON larger than ``max_bytes``: see ``truncation.py``; info ``max_bytes``,
  ``bytes_before``, ``bytes_after``, ``dropped``.

Lists: ``list_mode`` (``"set"`` by default, ``"ordered"``, or ``{field template: mode}``) and
``"list_mode"`` annotations in ``schema`` decide which arrays are item sets (``itemset``);
``schema`` also bounds numeric intervals (``intervals``, ``schema_info``).

``truncation_info`` always carries the four field/disagreement counts and ``reasons``
(which limits were hit) when ``truncated`` is set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steer_tools.evidence import BundleLimits, BundleSummary, Disagreement, Replicate
from steer_tools.statistics.confidence import confidence
from steer_tools.statistics.consensus import disagreement_values, find_consensus
from steer_tools.statistics.distance import table_distance_matrix
from steer_tools.statistics.distributions import distributions
from steer_tools.statistics.flatten import flatten
from steer_tools.statistics.itemset import ListModes
from steer_tools.statistics.schema_info import list_mode_annotations, schema_facts
from steer_tools.statistics.table import build_table
from steer_tools.statistics.truncation import fit_to_bytes


def summarize(
    replicates: list[Replicate], epsilon: float = 0.2, limits: BundleLimits | None = None,
    *, list_mode: Any = "set", schema: dict[str, Any] | None = None,
) -> BundleSummary:
    """Summarise replicates; ``epsilon`` is the relative tolerance for numeric consensus."""
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    limits = limits or BundleLimits()
    valid = [r for r in replicates if r.quality.valid]
    if not valid:
        return BundleSummary(consensus=None, confidence=0.0)

    facts = schema_facts(schema)
    modes = list_modes(list_mode, schema, facts)
    table = build_table([flatten(r.data, modes) for r in valid])
    matrix = table_distance_matrix(table)
    mean_distance = _mean_upper(matrix)

    fields_total = len(table.paths)
    fields_kept = min(fields_total, limits.max_fields)
    consensus, disagreeing = find_consensus(table, fields_kept, epsilon)
    ids = [r.id for r in valid]
    kept_diffs = disagreeing[: limits.max_diffs]
    summary = BundleSummary(
        consensus=consensus,
        disagreements=[
            Disagreement(
                field=table.paths[i], values=disagreement_values(table, i), replicate_ids=ids
            )
            for i in kept_diffs
        ],
        pairwise_distance=matrix,
        distributions=distributions(table, fields_kept, facts),
        confidence=confidence(len(valid), len(replicates), mean_distance),
    )

    reasons = []
    if fields_kept < fields_total:
        reasons.append("max_fields")
    if len(kept_diffs) < len(disagreeing):
        reasons.append("max_diffs")
    info: dict[str, Any] = {
        "reasons": reasons,
        "fields_total": fields_total,
        "fields_kept": fields_kept,
        "disagreements_total": len(disagreeing),
        "disagreements_kept": len(kept_diffs),
    }
    if reasons:
        summary.truncation_info = info
    fit_to_bytes(summary, limits.max_bytes, info)  # appends "max_bytes" to reasons if hit
    summary.truncated = bool(reasons)
    return summary


def _mean_upper(matrix: list[list[float]]) -> float:
    """Mean distance over distinct replicate pairs (0 with fewer than two replicates)."""
    k = len(matrix)
    if k < 2:
        return 0.0
    return float(np.asarray(matrix)[np.triu_indices(k, 1)].mean())


def list_modes(list_mode: Any, schema: dict[str, Any] | None,
               facts: dict[str, Any] | None = None) -> ListModes:
    """The bundle's list modes: the tool option combined with the schema's annotations (the
    early-stop distance and the summary must use the same ones)."""
    facts = schema_facts(schema) if facts is None else facts
    return ListModes.build(list_mode, list_mode_annotations(facts))
