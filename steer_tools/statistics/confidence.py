"""One number in [0, 1] saying how much to trust a bundle.

Formula::

    validity   = valid_count / total_count
    agreement  = 1 - mean_pairwise_distance      (1.0 when valid_count < 2)
    confidence = clip(validity * agreement, 0, 1), rounded to 4 decimals
    confidence = 0 when valid_count == 0

``mean_pairwise_distance`` is the mean of the upper triangle of the valid replicates'
distance matrix. Both factors matter: replicates that fail validation lower confidence
even if the survivors agree, and valid replicates that disagree lower it even if none
failed. A single valid replicate has nothing to disagree with, so only validity counts.
"""

from __future__ import annotations


def confidence(valid_count: int, total_count: int, mean_pairwise_distance: float) -> float:
    """Bundle confidence per the module docstring's formula."""
    if valid_count <= 0 or total_count <= 0:
        return 0.0
    validity = min(valid_count / total_count, 1.0)
    agreement = 1.0 if valid_count < 2 else 1.0 - mean_pairwise_distance
    return round(min(max(validity * agreement, 0.0), 1.0), 4)
