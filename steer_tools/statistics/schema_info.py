"""What a replicate's JSON schema says about each field: numeric bounds, integer type, list mode.

The statistics key fields by flattened path (``plans[2].cost``); the schema describes them by
template (``plans[].cost``). ``schema_facts`` walks the schema once into
``{template: facts}`` so each field's facts are one dict lookup. It follows local ``$ref``
(``#/$defs/...``, as pydantic emits for nested models), ``allOf`` and the non-null branches of
``anyOf``/``oneOf`` (``Optional[int]`` keeps its bounds). Annotations are read from the
property's own schema: ``"list_mode": "set" | "ordered"`` on an array, e.g. with pydantic
``Field(json_schema_extra={"list_mode": "ordered"})``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steer_tools.statistics.flatten import ROOT_PATH

_MAX_DEPTH = 24


@dataclass(frozen=True)
class FieldFacts:
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    list_mode: str | None = None


def schema_facts(schema: dict[str, Any] | None) -> dict[str, FieldFacts]:
    """``{path template: FieldFacts}`` for every field the schema describes with a fact."""
    if not schema:
        return {}
    found: dict[str, FieldFacts] = {}
    _walk(schema, schema, "", found, 0)
    return found


def list_mode_annotations(facts: dict[str, FieldFacts]) -> dict[str, str]:
    return {path: f.list_mode for path, f in facts.items() if f.list_mode}


def _resolve(root: dict[str, Any], node: Any, depth: int) -> dict[str, Any]:
    while isinstance(node, dict) and "$ref" in node and depth < _MAX_DEPTH:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            return {}
        target: Any = root
        for part in ref[1:].split("/")[1:]:
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) \
                if isinstance(target, dict) else {}
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        depth += 1
    return node if isinstance(node, dict) else {}


def _walk(root: dict[str, Any], node: Any, path: str, found: dict[str, FieldFacts],
          depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    node = _resolve(root, node, depth)
    for key in ("allOf", "anyOf", "oneOf"):
        for branch in node.get(key, []) or []:
            branch = _resolve(root, branch, depth + 1)
            if branch.get("type") != "null":
                _walk(root, {**{k: v for k, v in node.items() if k != key}, **branch}, path,
                      found, depth + 1)
        if key in node:
            return
    kinds = node.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    facts = _facts(node, kinds)
    if facts is not None:
        found[path or ROOT_PATH] = facts
    for name, sub in (node.get("properties") or {}).items():
        _walk(root, sub, f"{path}.{name}" if path else str(name), found, depth + 1)
    items = node.get("items")
    if isinstance(items, dict):
        _walk(root, items, f"{path}[]", found, depth + 1)


def _facts(node: dict[str, Any], kinds: set[Any]) -> FieldFacts | None:
    mode = node.get("list_mode") if "array" in kinds or "items" in node else None
    minimum = _bound(node, "minimum", "exclusiveMinimum")
    maximum = _bound(node, "maximum", "exclusiveMaximum")
    integer = "integer" in kinds
    if mode is None and minimum is None and maximum is None and not integer:
        return None
    return FieldFacts(minimum=minimum, maximum=maximum, integer=integer,
                      list_mode=mode if mode in ("set", "ordered") else None)


def _bound(node: dict[str, Any], inclusive: str, exclusive: str) -> float | None:
    values = [node.get(inclusive), node.get(exclusive)]
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers:
        return None
    return max(numbers) if inclusive == "minimum" else min(numbers)
