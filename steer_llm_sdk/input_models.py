"""The config models' side of input validation: a pydantic base class that refuses NaN,
infinity and bool-as-number coercions, and the per-field hooks that apply the rules of
:mod:`steer_llm_sdk.validation` inside ``OrchestrationConfig`` and ``BundleOptions``."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from steer_llm_sdk.validation import (
    MAX_SEED,
    REPLICATE_BUDGET_KEYS,
    InputError,
    check_budget,
    check_header_id,
    check_idempotency_key,
    check_json_schema,
    check_metadata,
    check_names,
    check_quality,
    check_seed,
)


def _kind(annotation: Any) -> str | None:
    """'bool', 'int', 'number', 'number-dict' or 'int-list' for the annotations we guard."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = {_kind(a) for a in typing.get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "number"
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2 and args[1] in (int, float):
        return "number-dict"
    if origin is list and args and args[0] is int:
        return "int-list"
    return None


def _not_number(value: Any) -> bool:
    return isinstance(value, bool | str | bytes)


def strict_scalars(model: Any, field: str, value: Any) -> Any:
    """Before-validator for every field: booleans are not numbers, numbers (and 'true') are
    not booleans, numeric strings are not numbers. Pydantic's lax mode would coerce them."""
    info = model.model_fields.get(field)
    kind = _kind(info.annotation) if info is not None else None
    if kind is None or value is None:
        return value
    if kind == "bool" and not isinstance(value, bool):
        raise InputError(field, value, "true or false (a bool)")
    if kind == "number" and _not_number(value):
        raise InputError(field, value, "a number (not a bool or a string)")
    if kind == "int" and (_not_number(value) or not isinstance(value, int)):
        raise InputError(field, value, "an integer (not a bool, a float or a string)")
    if kind == "number-dict" and isinstance(value, dict):
        for key, sub in value.items():
            if _not_number(sub):
                raise InputError(f"{field}[{key!r}]", sub, "a number (not a bool or a string)")
    if kind == "int-list" and isinstance(value, list | tuple):
        for i, sub in enumerate(value):
            if _not_number(sub) or not isinstance(sub, int):
                raise InputError(f"{field}[{i}]", sub, "an integer (not a bool, a float or a "
                                 "string)")
    return value


class InputModel(BaseModel):
    """Base of the public config models: no NaN/inf floats, no bool-as-number coercions."""

    model_config = ConfigDict(allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_scalars(cls, value: Any, info: ValidationInfo) -> Any:
        return strict_scalars(cls, info.field_name or "", value)


def check_config_field(field: str, value: Any) -> Any:
    """OrchestrationConfig's before-validators, one rule per field."""
    if field == "budget":
        return check_budget("budget", value)
    if field == "quality_requirements":
        return check_quality(value)
    if field in ("trace_id", "request_id"):
        return check_header_id(field, value)
    if field == "idempotency_key":
        return check_idempotency_key(value)
    if field == "metadata":
        return check_metadata(value)
    if field == "fallback_tools":
        return check_names("fallback_tools", value)
    return value


def check_bundle_option(field: str, value: Any) -> Any:
    """BundleOptions' before-validators (steer_tools.bundle), one rule per field."""
    if field == "per_replicate_budget":
        return check_budget(field, value, REPLICATE_BUDGET_KEYS)
    if field == "global_budget":
        return check_budget(field, value)
    if field == "seeds":
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise InputError("seeds", value, f"None or a list of integers 0..{MAX_SEED}")
        return [check_seed(f"seeds[{i}]", seed) for i, seed in enumerate(value)]
    if field == "output_schema":
        return check_json_schema("output_schema", value)
    if field in ("trace_id", "request_id"):
        return check_header_id(field, value)
    return value


def input_error_from(prefix: str, exc: Any) -> InputError:
    """One InputError from a pydantic ValidationError: the first problem, located under
    ``prefix`` (e.g. ``tool_options['k']``), with pydantic's own description of the rule."""
    err = exc.errors()[0]
    loc = "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in err.get("loc", ()))
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, InputError):
        head, bracket, tail = original.field.partition("[")
        return InputError(f"{prefix}[{head!r}]{bracket}{tail}", original.value,
                          original.accepted)
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return InputError(f"{prefix}{loc}", err.get("input"), err.get("msg", "") + extra)
