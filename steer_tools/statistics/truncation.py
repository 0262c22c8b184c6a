"""Shrink a summary until its JSON fits ``BundleLimits.max_bytes``.

Bundles are stored and shown in the UI, so one replicate with a huge payload must not make
the summary unreadable. What goes first is what is cheapest to lose and easiest to rebuild
from the replicates themselves, always from the end of the sorted field order so what is
left is a prefix a reader can reason about:

1. per-field distributions;
2. disagreements' ``values`` (the field names and replicate ids stay);
3. whole disagreements;
4. consensus entries.

The pairwise matrix (K x K) is never dropped. Entry sizes are estimated with ``json`` and
the result is checked with the real serialisation, tightening the budget if needed.
"""

from __future__ import annotations

import json
from typing import Any

from steer_tools.evidence import BundleSummary

_RESERVE = 512  # bytes kept free for truncation_info itself
_STAGES = ("distributions", "disagreement_values", "disagreements", "consensus")


def summary_bytes(summary: BundleSummary) -> int:
    """Size of the summary as it is persisted (compact JSON, UTF-8)."""
    return len(summary.model_dump_json().encode())


def fit_to_bytes(summary: BundleSummary, max_bytes: int, info: dict[str, Any]) -> BundleSummary:
    """Return ``summary`` (updated in place) within ``max_bytes``; ``info`` gets what was cut.

    Does nothing when the summary already fits. Otherwise appends "max_bytes" to
    ``info["reasons"]``, adds ``max_bytes``, ``bytes_before``, ``bytes_after`` and
    ``dropped`` ({stage: entries dropped}), and sets ``truncated`` and ``truncation_info``.
    If even the pairwise matrix alone is too big, ``bytes_after`` stays above ``max_bytes``.
    """
    before = summary_bytes(summary)
    if before <= max_bytes:
        return summary
    dropped = dict.fromkeys(_STAGES, 0)
    info.setdefault("reasons", []).append("max_bytes")
    # bytes_after starts at `before`, which has at least as many digits as the final value,
    # so writing the final value in can only shrink the measured size
    info.update(max_bytes=max_bytes, bytes_before=before, bytes_after=before, dropped=dropped)
    summary.truncation_info = info
    summary.truncated = True
    size = summary_bytes(summary)
    while size > max_bytes:
        excess = size - max_bytes + _RESERVE
        removed = 0
        for stage in _STAGES:
            if excess <= 0:
                break
            saved, count = _drop(summary, stage, excess)
            excess -= saved
            dropped[stage] += count
            removed += count
        size = summary_bytes(summary)
        if not removed:
            break  # nothing left to drop
    info["bytes_after"] = size
    return summary


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def _drop(summary: BundleSummary, stage: str, excess: int) -> tuple[int, int]:
    """Drop entries of one stage from the end until ``excess`` bytes are saved."""
    saved = count = 0
    if stage == "distributions" or stage == "consensus":
        entries = summary.distributions if stage == "distributions" else summary.consensus
        while entries and saved < excess:
            key, value = entries.popitem()
            saved += _size(key) + _size(value) + 2
            count += 1
    elif stage == "disagreement_values":
        for item in reversed(summary.disagreements):
            if saved >= excess:
                break
            if item.values:
                saved += _size(item.values) - 2
                item.values = []
                count += 1
    else:
        while summary.disagreements and saved < excess:
            item = summary.disagreements.pop()
            saved += _size(item.model_dump()) + 1
            count += 1
    return saved, count
