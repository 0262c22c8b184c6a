"""Lists compared as multisets: per-item support, consensus and majority items, Jaccard distance.

An LLM asked for "the main risks" names mostly the same risks in a different order each time.
Compared by position (``risks[0]``, ``risks[1]``) the same answer looks like total disagreement,
so arrays of scalars are, by default, one field holding an :class:`ItemSet`:

* **item identity**: canonical JSON of the item, strings case-folded with whitespace
  collapsed first ("Vendor lock-in" == "vendor  lock-in", but ``1`` != ``"1"``); the first
  spelling seen is the one shown;
* **support** of an item = the number of valid replicates whose list contains it (at least
  once), ``share = support / n`` with a Wilson 95% interval (``intervals.wilson``);
* **consensus items** = items in every valid replicate; **majority items** = support > n / 2;
* **distance** between two replicates' lists = multiset Jaccard distance
  ``1 - sum(min(countA, countB)) / sum(max(countA, countB))`` over items (the set Jaccard
  distance when items do not repeat; 0 when both lists are empty).

``list_mode`` decides which arrays become item sets (see ``ListModes``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np

from steer_tools.statistics.intervals import wilson

ListMode = Literal["set", "ordered"]
LIST_MODES: tuple[str, ...] = ("set", "ordered")
_INDEX = re.compile(r"\[\d+\]")


def path_template(path: str) -> str:
    """``"plans[2].tags"`` -> ``"plans[].tags"``: the form list modes and schemas are keyed by."""
    return _INDEX.sub("[]", path) if "[" in path else path


def item_key(item: Any) -> str:
    """Identity of one list item; see the module docstring. Strings skip ``json.dumps`` (the
    hot path): a leading unit separator keeps them apart from any JSON text."""
    if type(item) is str:
        return "\x1f" + " ".join(item.split()).casefold()
    return json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)


class ItemSet:
    """A list read as a multiset. Equal when the same items occur equally often."""

    __slots__ = ("counts", "items", "labels")

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = tuple(items)
        self.counts: dict[str, int] = {}
        self.labels: dict[str, Any] = {}
        for item in self.items:
            key = item_key(item)
            self.counts[key] = self.counts.get(key, 0) + 1
            self.labels.setdefault(key, item)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ItemSet) and self.counts == other.counts

    def __hash__(self) -> int:
        return hash(frozenset(self.counts.items()))

    def __repr__(self) -> str:
        return f"ItemSet({list(self.items)!r})"

    def __str__(self) -> str:
        return json.dumps(sorted(self.counts), ensure_ascii=False)

    def as_list(self) -> list[Any]:
        return list(self.items)

    def distance(self, other: ItemSet) -> float:
        """Multiset Jaccard distance (module docstring)."""
        if self.counts == other.counts:
            return 0.0
        inter = sum(min(c, other.counts.get(k, 0)) for k, c in self.counts.items())
        union = sum(self.counts.values()) + sum(other.counts.values()) - inter
        return 0.0 if union == 0 else 1.0 - inter / union


class ListModes:
    """Which arrays are item sets: a default, per-field overrides and schema annotations.

    ``default`` applies to arrays whose items are all scalars; arrays holding objects or
    arrays stay positional unless their path template is marked ``"set"`` (then each item is
    compared as a whole, by canonical JSON). Overrides are keyed by path template
    (``"risks"``, ``"plans[].tags"``); explicit overrides win over schema annotations, which
    win over the default.
    """

    def __init__(self, default: ListMode = "set",
                 overrides: Mapping[str, ListMode] | None = None) -> None:
        for where, mode in [("list_mode", default), *(overrides or {}).items()]:
            if mode not in LIST_MODES:
                raise ValueError(f"{where}: list mode must be 'set' or 'ordered', got {mode!r}")
        self.default = default
        self.overrides = dict(overrides or {})

    @classmethod
    def build(cls, option: Any = "set", annotations: Mapping[str, ListMode] | None = None,
              ) -> ListModes:
        """From a tool option (``"set"``, ``"ordered"`` or ``{template: mode}``) plus schema
        annotations (``{template: mode}``, see ``schema_info``)."""
        if isinstance(option, ListModes):
            return option
        if option is None:
            option = "set"
        if isinstance(option, str):
            return cls(option, annotations)  # type: ignore[arg-type]
        if isinstance(option, Mapping):
            return cls("set", {**(annotations or {}), **option})
        raise ValueError(f"list_mode must be 'set', 'ordered' or a dict of field -> mode, got "
                         f"{type(option).__name__}")

    def as_set(self, path: str, items: list[Any]) -> bool:
        """True when the array at ``path`` is read as an item set."""
        template = path_template(path)
        mode = self.overrides.get(template)
        if mode is not None:
            return mode == "set"
        return self.default == "set" and not any(isinstance(i, dict | list | tuple) for i in items)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ListModes) and self.default == other.default
                and self.overrides == other.overrides)

    def __hash__(self) -> int:
        return hash((self.default, tuple(sorted(self.overrides.items()))))


def set_distribution(column: list[Any], matrix: np.ndarray | None = None) -> dict[str, Any]:
    """Support of every item over the valid replicates' values of one set field.

    ``column`` holds one value per valid replicate: an ``ItemSet``, or anything else (missing,
    null, a scalar) which contains no item. ``matrix``: its ``set_distance_matrix`` when the
    caller has it already.
    """
    n = len(column)
    sets = [v for v in column if isinstance(v, ItemSet)]
    support: dict[str, int] = {}
    labels: dict[str, Any] = {}
    for value in sets:
        for key in value.counts:
            support[key] = support.get(key, 0) + 1
            labels.setdefault(key, value.labels[key])
    ranked = sorted(support, key=lambda key: -support[key])  # stable: ties keep first-seen order
    items = []
    for key in ranked:
        low, high = wilson(support[key], n)
        items.append({"item": labels[key], "support": support[key], "share": support[key] / n,
                      "share_ci95": [low, high]})
    if matrix is None:
        matrix = set_distance_matrix(column)
    rows = [i for i, v in enumerate(column) if isinstance(v, ItemSet)]
    pairs = len(rows) * (len(rows) - 1)  # symmetric, zero diagonal: mean = sum / pairs
    mean_distance = float(matrix[np.ix_(rows, rows)].sum()) / pairs if pairs else 0.0
    return {
        "type": "set",
        "n": n,
        "missing": n - len(sets),
        "items": items,
        "consensus_items": [labels[k] for k in ranked if support[k] == n],
        "majority_items": [labels[k] for k in ranked if support[k] * 2 > n],
        "mean_size": sum(len(s.items) for s in sets) / len(sets) if sets else 0.0,
        "mean_jaccard_distance": mean_distance,
    }


def set_distance_matrix(column: list[Any]) -> np.ndarray:
    """K x K multiset Jaccard distances of one column (0 where a value is not an ItemSet):
    an item-count matrix, then sum(min) / sum(max) for all pairs at once."""
    k = len(column)
    vocab: dict[str, int] = {}
    for value in column:
        if isinstance(value, ItemSet):
            for key in value.counts:
                vocab.setdefault(key, len(vocab))
    counts = np.zeros((k, max(len(vocab), 1)))
    present = np.zeros(k, dtype=bool)
    for row, value in enumerate(column):
        if isinstance(value, ItemSet):
            present[row] = True
            for key, count in value.counts.items():
                counts[row, vocab[key]] = count
    inter = np.minimum(counts[:, None, :], counts[None, :, :]).sum(axis=2)
    union = np.maximum(counts[:, None, :], counts[None, :, :]).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(union > 0, 1.0 - inter / np.maximum(union, 1), 0.0)
    both = present[:, None] & present[None, :]
    return np.where(both, distance, 0.0)


def common_items(column: list[Any]) -> list[Any] | None:
    """Items every value of ``column`` contains (first replicate's order), or None when some
    value is not an item set."""
    if not column or not all(isinstance(v, ItemSet) for v in column):
        return None
    first: ItemSet = column[0]
    return [first.labels[key] for key in first.counts
            if all(key in other.counts for other in column[1:])]


def plain(value: Any) -> Any:
    """JSON form of a table value: item sets become their list."""
    return value.as_list() if isinstance(value, ItemSet) else value
