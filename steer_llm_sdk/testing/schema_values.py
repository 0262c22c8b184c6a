"""Generate a JSON value that is valid against a JSON Schema, the way a model would fill it in.

Covers the subset that OpenAI structured outputs and pydantic's ``model_json_schema()`` emit:
objects (properties/required/additionalProperties), strings (enum, const, min/maxLength, common
formats), integers/numbers (inclusive and exclusive bounds, multipleOf), booleans, arrays
(items/prefixItems, min/maxItems, uniqueItems), null, type lists, anyOf/oneOf/allOf and
``$ref`` into ``$defs``/``definitions``. ``pattern`` is not honoured (no regex inversion).

Values come from :class:`~steer_llm_sdk.testing.randomness.Draw`, so replicates of one prompt
cluster around a prompt-specific answer; see that module for why.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from steer_llm_sdk.testing.randomness import Draw

MAX_DEPTH = 8
MAX_VALUES = 2000  # recursive schemas: past this, only what the schema requires
PHRASES = (
    "moderate evidence of improvement",
    "limited sample size",
    "consistent with the baseline",
    "signal is weak but positive",
    "strong agreement across sources",
    "risk appears manageable",
    "effect varies by segment",
    "insufficient data to conclude",
    "cost outweighs the benefit",
    "clear upward trend",
    "results are robust to outliers",
    "uncertainty remains high",
)


class SchemaValueGenerator:
    """Walks one schema; ``root`` is kept to resolve ``$ref`` pointers."""

    def __init__(self, root: dict[str, Any], draw: Draw) -> None:
        self.root = root
        self.draw = draw
        self.budget = MAX_VALUES

    def minimal(self, depth: int) -> bool:
        """True once deep or big enough that only required parts should be generated."""
        return depth >= MAX_DEPTH or self.budget <= 0

    def generate(self) -> Any:
        return self.value(self.root, "#", 0)

    # -- schema plumbing -------------------------------------------------------------------
    def resolve(self, schema: dict[str, Any], seen: int = 0) -> dict[str, Any]:
        """Inline ``$ref`` and ``allOf`` so the caller sees one flat schema."""
        if seen > 32:
            raise ValueError("$ref chain too deep (cyclic reference?)")
        if "$ref" in schema:
            target = self._pointer(schema["$ref"])
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            return self.resolve({**target, **siblings}, seen + 1)
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part, seen + 1)
                props = {**part.get("properties", {}), **merged.get("properties", {})}
                required = sorted(set(part.get("required", [])) | set(merged.get("required", [])))
                merged = {**part, **merged}
                if props:
                    merged["properties"] = props
                if required:
                    merged["required"] = required
            return merged
        return schema

    def _pointer(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node: Any = self.root
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            node = node[raw.replace("~1", "/").replace("~0", "~")]
        return node

    # -- dispatch --------------------------------------------------------------------------
    def value(self, schema: Any, path: str, depth: int) -> Any:
        if schema is True or schema == {}:
            return self.string({}, path)
        if not isinstance(schema, dict):
            raise ValueError(f"unsupported schema at {path}: {schema!r}")
        self.budget -= 1
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.draw.pick(path, list(schema["enum"]))
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            options = [{**base, **self.resolve(b)} for b in branches]
            return self._choose(options, path, depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            return self._choose([{**schema, "type": t} for t in kind], path, depth)
        if kind is None:
            kind = self._infer_type(schema)
        handler = {
            "object": self.object,
            "array": self.array,
            "string": lambda s, p, d: self.string(s, p),
            "integer": lambda s, p, d: self.number(s, p, integer=True),
            "number": lambda s, p, d: self.number(s, p, integer=False),
            "boolean": lambda s, p, d: self.draw.coin(p),
            "null": lambda s, p, d: None,
        }.get(kind)
        if handler is None:
            raise ValueError(f"unsupported schema type {kind!r} at {path}")
        return handler(schema, path, depth)

    @staticmethod
    def _infer_type(schema: dict[str, Any]) -> str:
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "multipleOf")):
            return "number"
        return "string"

    def _choose(self, options: list[dict[str, Any]], path: str, depth: int) -> Any:
        """Nullable unions mostly yield a value (as models do); deep recursion yields null."""
        non_null = [o for o in options if o.get("type") != "null"]
        has_null = len(non_null) < len(options)
        if has_null and (not non_null or self.minimal(depth) or
                         self.draw.noise(path + "?null").random() < 0.15):
            return None
        chosen = self.draw.pick(path + "?branch", non_null, favourite_weight=0.8)
        return self.value(chosen, path, depth)

    # -- types -----------------------------------------------------------------------------
    def object(self, schema: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for name, sub in props.items():
            sub_path = f"{path}/{name}"
            optional = name not in required
            # Models fill most optional fields; skip ~15% so consumers handle absence.
            if optional and (self.minimal(depth) or
                             self.draw.noise(sub_path + "?").random() < 0.15):
                continue
            out[name] = self.value(sub, sub_path, depth + 1)
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict) and not self.minimal(depth):
            count = 1 + round(2 * self.draw.unit(path + "?extra"))
            for i in range(count):
                out[f"key_{i + 1}"] = self.value(extra, f"{path}/key_{i + 1}", depth + 1)
        minimum = schema.get("minProperties", 0)
        for name, sub in props.items():
            if len(out) >= minimum:
                break
            out.setdefault(name, self.value(sub, f"{path}/{name}", depth + 1))
        return out

    def array(self, schema: dict[str, Any], path: str, depth: int) -> list[Any]:
        prefix: list[Any] = schema.get("prefixItems", [])
        items = schema.get("items", {})
        low = max(int(schema.get("minItems", 0 if self.minimal(depth) else 1)), 0)
        if "maxItems" in schema:
            low = min(low, int(schema["maxItems"]))
        high = int(schema.get("maxItems", low + 3))
        if self.minimal(depth):
            high = low
        count = low + round((high - low) * self.draw.unit(path + "?len", spread=0.2))
        if items is False:
            count = min(count, len(prefix))
        unique = bool(schema.get("uniqueItems"))
        out: list[Any] = []
        seen: set[str] = set()
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            for attempt in range(12):
                suffix = f"/{i}" if attempt == 0 else f"/{i}~{attempt}"
                candidate = self.value(sub, path + suffix, depth + 1)
                key = json.dumps(candidate, sort_keys=True)
                if not unique or key not in seen:
                    break
            else:
                if len(out) >= low:  # cannot find another distinct value; stop early
                    break
            seen.add(key)
            out.append(candidate)
        return out

    def string(self, schema: dict[str, Any], path: str) -> str:
        fmt = schema.get("format")
        text = self._formatted(fmt, path) if fmt else None
        if text is None:
            text = self.draw.pick(path, PHRASES, favourite_weight=0.5)
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        filler = iter(PHRASES * 4)
        while len(text) < low:
            text = f"{text}; {next(filler, 'more detail')}"
        if high is not None and len(text) > int(high):
            text = text[: int(high)].rstrip() or text[: int(high)]
            text = text.ljust(low, "x")
        return text

    def _formatted(self, fmt: str, path: str) -> str | None:
        rng = self.draw.noise(path + "?fmt")
        base = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(
            days=int(365 * self.draw.unit(path + "?day")), seconds=rng.randrange(86400)
        )
        return {
            "date-time": base.isoformat().replace("+00:00", "Z"),
            "date": base.date().isoformat(),
            "time": base.time().isoformat() + "Z",
            "email": f"analyst{rng.randrange(100)}@example.com",
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "uri": f"https://example.com/evidence/{rng.randrange(1000)}",
            "url": f"https://example.com/evidence/{rng.randrange(1000)}",
            "hostname": "example.com",
            "ipv4": f"192.0.2.{rng.randrange(1, 255)}",
            "duration": f"P{1 + rng.randrange(30)}D",
        }.get(fmt)

    def number(self, schema: dict[str, Any], path: str, *, integer: bool) -> int | float:
        low, low_excl = _bound(schema, "minimum", "exclusiveMinimum")
        high, high_excl = _bound(schema, "maximum", "exclusiveMaximum")
        width = 100.0 if integer else 1.0
        if low is None and high is None:
            low, high = 0.0, width
        elif low is None:
            low = high - width  # type: ignore[operator]
        elif high is None:
            high = low + width
        assert low is not None and high is not None
        if integer:
            lo = math.floor(low) + 1 if low_excl and float(low).is_integer() else math.ceil(low)
            hi = math.ceil(high) - 1 if high_excl and float(high).is_integer() else math.floor(high)
            hi = max(hi, lo)
            value: int | float = lo + round((hi - lo) * self.draw.unit(path))
        else:
            u = min(max(self.draw.unit(path), 0.01), 0.99)
            exact = low + (high - low) * u
            value = round(exact, 3) if high - low >= 0.05 else exact
            if not _inside(value, low, high, low_excl, high_excl):
                value = exact
        step = schema.get("multipleOf")
        if step:
            for snap in (math.ceil, math.floor):
                snapped = snap(value / step) * step
                snapped = int(snapped) if integer else round(snapped, 10)
                if _inside(snapped, low, high, low_excl, high_excl):
                    return snapped
        return value


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str) -> tuple[float | None, bool]:
    """Read a bound in either draft-4 (boolean exclusive) or draft-6+ (numeric) style."""
    incl = schema.get(inclusive)
    excl = schema.get(exclusive)
    if isinstance(excl, bool):
        return incl, excl and incl is not None
    if excl is None:
        return incl, False
    if incl is None:
        return excl, True
    exclusive_is_tighter = excl >= incl if inclusive == "minimum" else excl <= incl
    return (excl, True) if exclusive_is_tighter else (incl, False)


def _inside(value: float, low: float, high: float, low_excl: bool, high_excl: bool) -> bool:
    above = value > low if low_excl else value >= low
    below = value < high if high_excl else value <= high
    return above and below


def generate_for_schema(schema: dict[str, Any], draw: Draw) -> Any:
    """Entry point: a value valid against ``schema`` (the inner ``json_schema.schema``)."""
    return SchemaValueGenerator(schema, draw).generate()
