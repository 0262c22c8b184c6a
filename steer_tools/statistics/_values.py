"""Value helpers shared by every statistic, so all of them classify values the same way.

One definition of "number", "same value" and "word tokens" keeps the distance matrix,
the consensus and the distributions from contradicting each other about one field.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

_WORD = re.compile(r"\w+")
_NOT_WORD_OR_SPACE = re.compile(r"[^\w\s]")


class _Missing:
    """Marks a field path that a replicate does not have (distinct from a JSON null)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


def is_number(value: Any) -> bool:
    """True for finite int/float values; bools, NaN, inf and floats-overflowing ints are not.

    Non-finite values would turn means and distances into NaN, so they are treated as
    categorical values instead.
    """
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return -1e308 < value < 1e308
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def same_value(a: Any, b: Any) -> bool:
    """Type-aware equality: ``True`` and ``1`` differ, two NaNs are the same value."""
    if type(a) is not type(b):
        return False
    if a == b:
        return True
    return isinstance(a, float) and math.isnan(a) and math.isnan(b)


def tokens(text: str) -> frozenset[str]:
    """Lower-cased word tokens (regex ``\\w+``) of ``text`` as a set, for Jaccard distance.

    Text made only of word characters and whitespace takes the ``str.split`` fast path,
    which yields the same tokens about three times faster than the regex.
    """
    lowered = text.lower()
    if _NOT_WORD_OR_SPACE.search(lowered) is None:
        return frozenset(lowered.split())
    return frozenset(_WORD.findall(lowered))


def jaccard_distance(a: frozenset[str], b: frozenset[str]) -> float:
    """1 - |A∩B| / |A∪B|; two empty sets are identical (0)."""
    if a is b:
        return 0.0
    inter = len(a & b)
    union = len(a) + len(b) - inter
    return 0.0 if union == 0 else 1.0 - inter / union


def number_distance(a: float, b: float) -> float:
    """|a-b| / max(|a|,|b|) clipped to [0, 1]; 0 when both are 0."""
    scale = max(abs(a), abs(b))
    if scale == 0:
        return 0.0
    return min(abs(a - b) / scale, 1.0)


def value_distance(a: Any, b: Any) -> float:
    """Distance in [0, 1] of two values of one field, following the per-type rules.

    A field missing on exactly one side is as different as it gets (1).
    """
    if a is MISSING or b is MISSING:
        return 0.0 if a is b else 1.0
    if is_number(a) and is_number(b):
        return number_distance(float(a), float(b))
    if isinstance(a, str) and isinstance(b, str):
        return 0.0 if a == b else jaccard_distance(tokens(a), tokens(b))
    distance = getattr(a, "distance", None)  # two ItemSets: multiset Jaccard
    if distance is not None and type(a) is type(b):
        return float(distance(b))
    return 0.0 if same_value(a, b) else 1.0
