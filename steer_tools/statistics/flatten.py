"""JSON -> flat ``{field path: leaf value}``, the common shape every statistic works on.

Paths join dict keys with "." and index lists as ``[i]``: ``{"a": {"b": [1, {"c": 2}]}}``
gives ``{"a.b[0]": 1, "a.b[1].c": 2}``. Comparing replicates field by field needs one
leaf per path, and a path string is what a reader of the bundle can look up.

Conventions (kept stable because bundles are persisted):

* a non-container root (number, string, null, bool) becomes ``{"value": data}``; this is
  how text replicates appear, so their distance is the token-set distance of the text;
* an empty root dict/list has no fields (``{}``); a nested empty dict/list is kept as a leaf
  holding the empty container, so ``{"tags": []}`` and ``{}`` still differ;
* a root list indexes from the root: ``[1, 2]`` -> ``{"[0]": 1, "[1]": 2}``;
* non-string keys are converted with ``str``; keys are not escaped, so a key containing
  "." or "[" can collide with a nested path (the one written last wins) -- LLM JSON keys
  practically never do this.

``list_mode`` (``"ordered"`` here by default; bundles default to ``"set"``): in set mode an
array chosen by ``itemset.ListModes`` is one leaf holding an ``ItemSet`` instead of one leaf
per index, so ``{"risks": ["a", "b"]}`` -> ``{"risks": ItemSet(["a", "b"])}``; a root array
becomes ``{"value": ItemSet(...)}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steer_tools.statistics.itemset import ListModes

ROOT_PATH = "value"
_CONTAINERS = (dict, list, tuple)


def flatten(data: Any, list_mode: str | ListModes | dict[str, str] = "ordered") -> dict[str, Any]:
    """Flatten JSON-like ``data`` into ``{path: leaf}``; see the module docstring."""
    modes = None
    if list_mode != "ordered":
        from steer_tools.statistics.itemset import ListModes

        modes = ListModes.build(list_mode)
    if isinstance(data, _CONTAINERS):
        if modes is not None and not isinstance(data, dict) and modes.as_set("", list(data)):
            return {ROOT_PATH: _item_set(data)}
        out: dict[str, Any] = {}
        _walk(data, "", out, modes)
        return out
    return {ROOT_PATH: data}


def _item_set(items: Any) -> Any:
    global _ITEM_SET
    if _ITEM_SET is None:  # imported on first use: itemset imports flatten's neighbours
        from steer_tools.statistics.itemset import ItemSet

        _ITEM_SET = ItemSet
    return _ITEM_SET(items)


_ITEM_SET: Any = None


def _walk(node: Any, prefix: str, out: dict[str, Any], modes: ListModes | None = None) -> None:
    if isinstance(node, dict):
        if not node and prefix:
            out[prefix] = {}
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, _CONTAINERS):
                if modes is not None and not isinstance(value, dict) and \
                        modes.as_set(path, value):
                    out[path] = _item_set(value)
                else:
                    _walk(value, path, out, modes)
            else:
                out[path] = value
    else:
        if not node and prefix:
            out[prefix] = []
        for index, value in enumerate(node):
            path = f"{prefix}[{index}]"
            if isinstance(value, _CONTAINERS):
                if modes is not None and not isinstance(value, dict) and \
                        modes.as_set(path, value):
                    out[path] = _item_set(value)
                else:
                    _walk(value, path, out, modes)
            else:
                out[path] = value
