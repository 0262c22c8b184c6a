"""The deployed flow's full parameter schema, generated from the pydantic models.

Prefect derives a deployment's ``parameter_openapi_schema`` from the flow's signature, where
``config`` and ``tool_options`` are plain ``dict``s: the server then accepts
``{"config": {"budget": {"dollars": 1}}}`` and the run fails later in a worker. With this
schema (``OrchestrationConfig`` and the tool's ``BundleOptions`` nested in full, budgets and
ids tightened to the rules of ``steer_llm_sdk.validation``) the server itself refuses a wrongly
typed or unknown nested value with HTTP 409 before a flow run exists. The worker still checks
everything again (an older deployment may carry a loose schema).
"""

from __future__ import annotations

import copy
from typing import Any

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.validation import (
    BUDGET_KEYS,
    MAX_ID_CHARS,
    MAX_KEY_CHARS,
    MAX_SEED,
    REPLICATE_BUDGET_KEYS,
)
from steer_tools.base import Tool
from steer_tools.bundle import BundleOptions, BundleTool

_REF = "#/definitions/{model}"
_HEADER_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS,
              "pattern": r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 300, "pattern": r"\S"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _budget(keys: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "properties": {k: {"type": "number", "exclusiveMinimum": 0} for k in keys}}


def _model_schema(model: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization", ref_template=_REF)
    definitions.update(schema.pop("$defs", {}))
    return schema


def _patch(properties: dict[str, Any], name: str, replacement: dict[str, Any],
           nullable: bool) -> None:
    if name not in properties:
        return
    keep = {k: v for k, v in properties[name].items() if k in {"default", "description",
                                                                "title"}}
    properties[name] = {**(_nullable(replacement) if nullable else replacement), **keep}


def config_schema(definitions: dict[str, Any]) -> dict[str, Any]:
    schema = _model_schema(OrchestrationConfig, definitions)
    props = schema["properties"]
    _patch(props, "budget", _budget(BUDGET_KEYS), nullable=True)
    _patch(props, "quality_requirements", {
        "type": "object", "additionalProperties": False, "properties": {
            "min_confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "min_valid_replicates": {"type": "integer", "minimum": 1, "maximum": 50}}},
        nullable=False)
    for name in ("trace_id", "request_id"):
        _patch(props, name, _HEADER_ID, nullable=True)
    _patch(props, "idempotency_key", {"type": "string", "maxLength": MAX_KEY_CHARS,
                                      "pattern": r"\S"}, nullable=True)
    _patch(props, "fallback_tools", {"type": "array", "items": _NAME}, nullable=False)
    schema["additionalProperties"] = False
    return schema


def tool_options_schema(tool: Tool | None, definitions: dict[str, Any]) -> dict[str, Any]:
    """BundleOptions in full for a bundle tool (plus its own extra names); any JSON object
    for a plain tool or a tool this process cannot load (the worker checks those)."""
    if not isinstance(tool, BundleTool):
        return {"type": "object"}
    schema = copy.deepcopy(_model_schema(BundleOptions, definitions))
    props = schema["properties"]
    _patch(props, "per_replicate_budget", _budget(REPLICATE_BUDGET_KEYS), nullable=True)
    _patch(props, "global_budget", _budget(BUDGET_KEYS), nullable=True)
    _patch(props, "seeds", {"type": "array", "items": {
        "type": "integer", "minimum": 0, "maximum": MAX_SEED}}, nullable=True)
    for name in ("trace_id", "request_id"):
        _patch(props, name, _HEADER_ID, nullable=True)
    props["fallback_tools"] = {"type": "array", "items": _NAME, "title": "Fallback Tools"}
    for name in sorted(tool.extra_option_names):
        props.setdefault(name, {})
    schema["additionalProperties"] = False
    schema.pop("required", None)
    return schema


def parameter_schema(tool: Tool | None) -> dict[str, Any]:
    """The ``parameter_openapi_schema`` of a deployment whose default tool is ``tool``."""
    definitions: dict[str, Any] = {}
    config = config_schema(definitions)
    options = tool_options_schema(tool, definitions)
    return {
        "title": "Parameters",
        "type": "object",
        "properties": {
            "request": {"title": "request", "position": 0, "anyOf": [
                {"type": "object", "minProperties": 1}, {"type": "string", "pattern": r"\S"}]},
            "tool": {"title": "tool", "position": 1, "default": None,
                     "anyOf": [_NAME, {"type": "null"}]},
            "tool_options": {"title": "tool_options", "position": 2, "default": None,
                             "anyOf": [options, {"type": "null"}]},
            "config": {"title": "config", "position": 3, "default": None,
                       "anyOf": [config, {"type": "null"}]},
            "session_id": {"title": "session_id", "position": 4, "default": None,
                           "anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["request"],
        "definitions": definitions,
    }
