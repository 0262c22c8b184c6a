"""Pure statistics for evidence bundles: K replicates in, one ``BundleSummary`` out.

No I/O and no Prefect here, so the engine's statistics task, ``BundleTool.execute`` and
tests all compute exactly the same numbers.
"""

from steer_tools.statistics.confidence import confidence
from steer_tools.statistics.distance import pairwise_distance_matrix, replicate_distance
from steer_tools.statistics.flatten import flatten
from steer_tools.statistics.summary import summarize

__all__ = [
    "confidence",
    "flatten",
    "pairwise_distance_matrix",
    "replicate_distance",
    "summarize",
]
