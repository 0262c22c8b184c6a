"""Validation of every public input, shared by the SDK calls, the CLI, triggers and the worker.

Whoever can call ``Orchestrator.run``, ``steer trigger`` or create a flow run through the
Prefect API controls these values, so each one is checked before any flow run exists and
before any provider call. Every error is an :class:`InputError` (a ``ValueError``) naming the
field, the value (truncated) and what is accepted; inside pydantic models the same messages
surface as ``ValidationError`` entries located at the field.

Limits on requests and metadata have documented defaults (docs/security.md) and are read from
the environment at each check, so an operator can change them without code:

    STEER_MAX_REQUEST_BYTES   (default 512000)   serialised JSON size of a request
    STEER_MAX_REQUEST_DEPTH   (default 32)       nesting of dicts/lists in a request
    STEER_MAX_METADATA_BYTES  (default 16384)    serialised JSON size of config.metadata
    STEER_MAX_METADATA_DEPTH  (default 8)        nesting in config.metadata
"""

from __future__ import annotations

import difflib
import json
import math
import os
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from steer_llm_sdk.errors import OrchestratorError

BUDGET_KEYS = ("tokens", "cost_usd", "ms")
REPLICATE_BUDGET_KEYS = ("tokens", "cost_usd")
QUALITY_KEYS = ("min_confidence", "min_valid_replicates")
MAX_ID_CHARS = 128
MAX_KEY_CHARS = 256
MAX_SEED = 2**63 - 1  # the provider's seed is a signed 64-bit integer
MAX_K = 50  # BundleOptions.k upper bound
_DEPTH_CEILING = 200  # json.dumps recursion stays far below the interpreter's limit


class InputError(OrchestratorError, ValueError):
    """A public input was rejected; ``field``, ``value`` and ``accepted`` say which and why."""

    code = "invalid_input"

    def __init__(self, field: str, value: Any, accepted: str, hint: str = ""):
        self.field = field
        self.value = value
        self.accepted = accepted
        message = f"{field}: got {show(value)}; accepted: {accepted}"
        super().__init__(message + (f". {hint}" if hint else ""))


def show(value: Any, limit: int = 60) -> str:
    """``repr`` of a value cut to ``limit`` characters, with its type when that helps."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[: limit - 1] + f"… ({len(text)} chars)"
    kind = type(value).__name__
    return text if kind in {"str", "int", "float", "dict", "list", "NoneType"} \
        else f"{text} ({kind})"


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    choices = list(choices)
    same_case = [c for c in choices if c.lower() == str(name).lower()]
    match = same_case or difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}?" if match else ""


@dataclass(frozen=True)
class Limits:
    request_bytes: int = 512_000
    request_depth: int = 32
    metadata_bytes: int = 16_384
    metadata_depth: int = 8


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(name, raw, "a positive integer (environment variable)") from None
    if value < 1:
        raise InputError(name, raw, "a positive integer (environment variable)")
    return value


def current_limits() -> Limits:
    base = Limits()
    return Limits(
        request_bytes=_env_int("STEER_MAX_REQUEST_BYTES", base.request_bytes),
        request_depth=min(_env_int("STEER_MAX_REQUEST_DEPTH", base.request_depth),
                          _DEPTH_CEILING),
        metadata_bytes=_env_int("STEER_MAX_METADATA_BYTES", base.metadata_bytes),
        metadata_depth=min(_env_int("STEER_MAX_METADATA_DEPTH", base.metadata_depth),
                           _DEPTH_CEILING),
    )


# --- scalars -------------------------------------------------------------------------------

def check_number(field: str, value: Any, *, minimum: float | None = None,
                 exclusive_minimum: float | None = None, maximum: float | None = None,
                 integer: bool = False) -> int | float:
    """A finite int/float (never a bool or a numeric string) within the given bounds."""
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum}")
    if exclusive_minimum is not None:
        bounds.append(f"> {exclusive_minimum}")
    if maximum is not None:
        bounds.append(f"<= {maximum}")
    accepted = ("an integer" if integer else "a finite number") + \
        (f" {' and '.join(bounds)}" if bounds else "")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(field, value, accepted)
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(field, value, accepted)
    if integer and not (isinstance(value, int) or value.is_integer()):
        raise InputError(field, value, accepted)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum) \
            or (exclusive_minimum is not None and value <= exclusive_minimum):
        raise InputError(field, value, accepted)
    return int(value) if integer else value


def check_header_id(field: str, value: Any) -> str | None:
    """trace_id / request_id travel in HTTP headers, tags and run names: printable ASCII."""
    if value is None:
        return None
    accepted = (f"None or a string of 1-{MAX_ID_CHARS} printable ASCII characters "
                "(0x20-0x7E, no leading/trailing space)")
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_CHARS:
        raise InputError(field, value, accepted)
    if any(not 0x20 <= ord(ch) <= 0x7E for ch in value) or value != value.strip():
        raise InputError(field, value, accepted)
    return value


def check_idempotency_key(value: Any) -> str | None:
    """None turns idempotency off; a blank key never does so silently."""
    if value is None:
        return None
    accepted = (f"None or a non-blank string of at most {MAX_KEY_CHARS} characters without "
                "control characters")
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_KEY_CHARS:
        raise InputError("idempotency_key", value, accepted,
                         "Pass None (not '') to run without idempotency")
    if any(not ch.isprintable() for ch in value):
        raise InputError("idempotency_key", value, accepted)
    return value


def check_seed(field: str, value: Any) -> int:
    return int(check_number(field, value, minimum=0, maximum=MAX_SEED, integer=True))


def check_name(field: str, value: Any) -> str:
    """A tool name or reference: a non-blank string."""
    if not isinstance(value, str) or not value.strip() or len(value) > 300:
        raise InputError(field, value, "a non-blank string (a registered tool name, an entry "
                         "point name or 'package.module:attribute'), at most 300 characters")
    return value


# --- containers ----------------------------------------------------------------------------

def check_budget(field: str, value: Any, keys: tuple[str, ...] = BUDGET_KEYS
                 ) -> dict[str, float] | None:
    """None, or a dict of known keys to finite positive numbers."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(field, value, f"None or a dict with keys {', '.join(keys)}")
    checked: dict[str, float] = {}
    for key, limit in value.items():
        if key not in keys:
            raise InputError(f"{field}[{show(key)}]", key, f"a key among {', '.join(keys)}",
                             did_you_mean(key, keys))
        checked[key] = check_number(f"{field}[{key!r}]", limit, exclusive_minimum=0)
    return checked


def check_quality(value: Any, k: int | None = None) -> dict[str, float]:
    """min_confidence in [0, 1]; min_valid_replicates an integer from 1 to k (or 50)."""
    field = "quality_requirements"
    if not isinstance(value, dict):
        raise InputError(field, value, f"a dict with keys {', '.join(QUALITY_KEYS)}")
    for key in value:
        if key not in QUALITY_KEYS:
            raise InputError(f"{field}[{show(key)}]", key,
                             f"a key among {', '.join(QUALITY_KEYS)}",
                             did_you_mean(key, QUALITY_KEYS))
    checked: dict[str, float] = {}
    if "min_confidence" in value:
        checked["min_confidence"] = check_number(f"{field}['min_confidence']",
                                                 value["min_confidence"], minimum=0, maximum=1)
    if "min_valid_replicates" in value:
        top = k if k is not None else MAX_K
        checked["min_valid_replicates"] = check_number(
            f"{field}['min_valid_replicates']", value["min_valid_replicates"], minimum=1,
            maximum=top, integer=True)
    return checked


def check_json(field: str, value: Any, *, max_bytes: int, max_depth: int) -> Any:
    """JSON values only (dicts with str keys, lists, str, finite numbers, bools, None), at
    most ``max_depth`` deep and ``max_bytes`` serialised. Walks iteratively: a hostile
    900-level nesting is an error naming the path, not a RecursionError."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, path, depth = stack.pop()
        if item is None or isinstance(item, bool | str):
            continue
        if isinstance(item, int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise InputError(path, item, "JSON values: numbers must be finite")
            continue
        if isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                raise InputError(path, "<nested deeper>", f"JSON nested at most {max_depth} "
                                 "levels deep (configurable, see docs/security.md)")
            if isinstance(item, dict):
                for key, sub in item.items():
                    if not isinstance(key, str):
                        raise InputError(f"{path} key", key, "JSON objects with string keys")
                    stack.append((sub, f"{path}[{key[:40]!r}]", depth + 1))
            else:
                stack.extend((sub, f"{path}[{i}]", depth + 1) for i, sub in enumerate(item))
            continue
        raise InputError(path, item, "JSON values only: dict (str keys), list, str, finite "
                         "int/float, bool, None")
    size = len(json.dumps(value, allow_nan=False, ensure_ascii=False).encode())
    if size > max_bytes:
        raise InputError(field, value, f"at most {max_bytes} bytes as JSON, got {size} "
                         "(configurable, see docs/security.md)")
    return value


def check_request(value: Any) -> dict[str, Any]:
    """A request: a non-blank string (becomes {'query': ...}) or a JSON object."""
    limits = current_limits()
    if isinstance(value, str):
        if not value.strip():
            raise InputError("request", value, "a non-blank string or a non-empty JSON object")
        value = {"query": value}
    elif not isinstance(value, dict):
        raise InputError("request", value, "a non-blank string or a JSON object (dict with "
                         "str keys), e.g. {'query': '...'}")
    elif not value:
        raise InputError("request", value, "a non-blank string or a non-empty JSON object")
    check_json("request", value, max_bytes=limits.request_bytes,
               max_depth=limits.request_depth)
    return dict(value)


def check_metadata(value: Any) -> dict[str, Any]:
    limits = current_limits()
    if not isinstance(value, dict):
        raise InputError("metadata", value, "a JSON object (dict with str keys)")
    check_json("metadata", value, max_bytes=limits.metadata_bytes,
               max_depth=limits.metadata_depth)
    return value


def check_names(field: str, value: Any) -> list[str]:
    """A list of tool references (fallback_tools)."""
    if not isinstance(value, list | tuple):
        raise InputError(field, value, "a list of tool names")
    return [check_name(f"{field}[{i}]", name) for i, name in enumerate(value)]


def check_option_names(field: str, given: Iterable[Any], allowed: Iterable[str]) -> None:
    allowed = sorted(set(allowed))
    for name in given:
        if not isinstance(name, str):
            raise InputError(f"{field} key", name, "string option names")
        if name not in allowed:
            raise InputError(f"{field}[{name!r}]", name,
                             f"one of {', '.join(allowed)}", did_you_mean(name, allowed))


def check_json_schema(field: str, schema: Any) -> dict[str, Any] | None:
    """A JSON Schema document (checked against its metaschema), so a typo such as
    ``{"type": "nope"}`` fails when the tool is built, not in every replicate."""
    if schema is None:
        return None
    if not isinstance(schema, dict):
        raise InputError(field, schema, "None, a JSON Schema dict or a pydantic model class")
    import jsonschema

    check_json(field, schema, max_bytes=1_000_000, max_depth=64)
    validator = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "".join(f"[{p!r}]" for p in exc.absolute_path)
        raise InputError(f"{field}{where}", exc.instance,
                         f"a valid JSON Schema ({exc.message})") from None
    return schema


def check_template(field: str, template: Any) -> set[str]:
    """The request fields a ``str.format`` template uses; literal braces must be doubled."""
    if not isinstance(template, str) or not template.strip():
        raise InputError(field, template, "a non-blank str.format template, e.g. "
                         "'Assess: {query}'")
    hint = "escape literal braces as {{ }} (e.g. 'Answer as {{\"label\": ...}}')"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InputError(field, template, f"a valid str.format template ({exc})", hint) from None
    names = set()
    for _, name, _, _ in parsed:
        if name is None:
            continue
        root = name.split(".", 1)[0].split("[", 1)[0]
        if not root.isidentifier():
            raise InputError(field, template, f"placeholders like {{query}}; {{{name}}} is "
                             "not a field name", hint)
        names.add(root)
    return names
