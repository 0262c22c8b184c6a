"""Statistics cost: ``summarize`` over K=10 replicates of 1,000 fields each (no Prefect)."""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from steer_tools.evidence import Replicate
from steer_tools.statistics import summarize

SECTIONS = 20
FIELDS_PER_SECTION = 50  # 20 x 50 = 1,000 leaf fields per replicate


def replicate_data(seed: int) -> dict[str, Any]:
    """A realistic mix: numbers that vary a little, categories that mostly agree, flags, lists.

    Every replicate has the same 1,000 field paths; values differ by seed."""
    rng = random.Random(seed)
    data: dict[str, Any] = {}
    for s in range(SECTIONS):
        section: dict[str, Any] = {}
        for f in range(FIELDS_PER_SECTION):
            kind = f % 5
            if kind == 0:
                section[f"score_{f}"] = round(5 + rng.gauss(0, 1), 3)
            elif kind == 1:
                section[f"count_{f}"] = rng.choice([10, 10, 10, 11, 12])
            elif kind == 2:
                section[f"label_{f}"] = rng.choice(["low", "low", "low", "medium", "high"])
            elif kind == 3:
                section[f"flag_{f}"] = rng.random() < 0.8
            else:
                section[f"note_{f}"] = rng.choice([
                    "vendor lock-in on the payment gateway",
                    "data migration needs a dual-write window",
                    "team of four is thin for on-call coverage",
                ])
        data[f"section_{s:02d}"] = section
    return data


def make_replicates(k: int = 10) -> list[Replicate]:
    return [Replicate(id=f"r{i + 1}", seed=i + 1, data=replicate_data(i + 1)) for i in range(k)]


def measure(reps: int = 7, k: int = 10) -> dict[str, Any]:
    replicates = make_replicates(k)
    fields = sum(1 for s in replicates[0].data.values() for _ in s)
    started = time.perf_counter()
    summary = summarize(replicates)  # first call: lazy imports, numpy/scipy warm-up
    first = time.perf_counter() - started
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        summarize(replicates)
        samples.append(time.perf_counter() - started)
    return {
        "k": k, "fields_per_replicate": fields, "first_call_s": round(first, 4),
        "median_s": round(statistics.median(samples), 4),
        "samples_s": [round(s, 4) for s in samples],
        "confidence": summary.confidence, "disagreements": len(summary.disagreements),
        "truncated": summary.truncated,
    }
