"""A run's inputs checked against the tool that will run them: the request, the tool options,
quality requirements that depend on k, and fallback tool references.

The same checks run in three places, so no path skips them: ``Orchestrator.run`` (before any
flow run exists), ``SteerLLMClient.trigger`` / ``steer trigger`` (before the API call), and the
flow itself when it starts from a deployment in a worker (parameters nobody checked)."""

from __future__ import annotations

from typing import Any

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.input_models import input_error_from
from steer_llm_sdk.validation import (
    InputError,
    check_header_id,
    check_json,
    check_names,
    check_option_names,
    check_quality,
    current_limits,
)
from steer_tools.base import Tool
from steer_tools.bundle import BundleTool
from steer_tools.registry import ToolRegistry
from steer_tools.resolve import resolve_tool


def check_tool_options_shape(tool_options: Any) -> dict[str, Any]:
    """None or a JSON object with str keys, within the request size limits."""
    if tool_options is None:
        return {}
    if not isinstance(tool_options, dict):
        raise InputError("tool_options", tool_options, "None or a dict of option names to "
                         "JSON values, e.g. {'k': 5}")
    limits = current_limits()
    check_json("tool_options", tool_options, max_bytes=limits.request_bytes,
               max_depth=limits.request_depth)
    for key in tool_options:
        if key.startswith("_"):
            raise InputError(f"tool_options[{key!r}]", key, "option names not starting with "
                             "'_' (reserved for the engine)")
    if "fallback_tools" in tool_options:
        check_names("tool_options['fallback_tools']", tool_options["fallback_tools"])
    for key in ("trace_id", "request_id"):  # they may become the run's ids
        check_header_id(f"tool_options[{key!r}]", tool_options.get(key))
    return tool_options


def check_config(config: Any) -> OrchestrationConfig:
    """A flow's ``config`` parameter (a dict) as an OrchestrationConfig, or one InputError."""
    if isinstance(config, OrchestrationConfig):
        return config
    if config is not None and not isinstance(config, dict):
        raise InputError("config", config, "an OrchestrationConfig dump (a JSON object)")
    from pydantic import ValidationError

    try:
        return OrchestrationConfig.model_validate(config or {})
    except ValidationError as exc:
        raise input_error_from("config", exc) from None


def check_tool_inputs(tool: Tool, payload: dict[str, Any], tool_options: dict[str, Any],
                      cfg: OrchestrationConfig) -> None:
    """What the named tool accepts: its request fields, its option names and values, and
    ``min_valid_replicates`` no larger than the bundle's k."""
    tool.validate_request(payload)
    tool.check_options(tool_options)
    if isinstance(tool, BundleTool) and cfg.quality_requirements:
        k = tool.parse_options(tool_options).k
        check_quality(cfg.quality_requirements, k=k)


def check_planned_options(registry: ToolRegistry, tool_options: dict[str, Any]) -> None:
    """No tool named (a planner chooses): option names must be accepted by some registered
    tool, unless one of them takes any options."""
    names: set[str] = set()
    for name in registry.list_tools():
        tool = registry.get_tool(name)
        accepted = tool.option_names if tool is not None else None
        if accepted is None:
            return
        names |= accepted
    if names:
        check_option_names("tool_options", tool_options, names | {"fallback_tools"})


def check_fallbacks(registry: ToolRegistry, cfg: OrchestrationConfig,
                    tool_options: dict[str, Any]) -> None:
    """Every fallback names a registered or resolvable (allowlisted) tool."""
    for field, names in (("fallback_tools", cfg.fallback_tools),
                         ("tool_options['fallback_tools']",
                          tool_options.get("fallback_tools") or [])):
        for i, name in enumerate(names):
            resolve_tool(name, registry, field=f"{field}[{i}]")
