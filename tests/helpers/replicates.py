"""Replicates for the statistics tests: ``reps(data_r1, data_r2, ..., invalid=(2,))``."""

from __future__ import annotations

from steer_tools.evidence import Replicate, ReplicateQuality


def reps(*datas, invalid=()):
    return [
        Replicate(
            id=f"r{i + 1}",
            seed=i,
            data=d,
            quality=ReplicateQuality(valid=i + 1 not in invalid),
        )
        for i, d in enumerate(datas)
    ]
