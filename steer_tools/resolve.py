"""Find a tool by name or import path, so a deployed flow run in another process can load the
tool it was asked for without the caller's in-memory registry."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from steer_llm_sdk.errors import ToolResolutionError
from steer_tools.base import Tool
from steer_tools.registry import ToolRegistry

ENTRY_POINT_GROUP = "steer_llm_sdk.tools"


def _instantiate(obj: object, reference: str) -> Tool:
    if isinstance(obj, Tool):
        return obj
    if isinstance(obj, type) and issubclass(obj, Tool):
        return obj()
    if callable(obj):
        made = obj()
        if isinstance(made, Tool):
            return made
        raise ToolResolutionError(
            reference, f"factory returned {type(made).__name__}, not a steer_tools.Tool"
        )
    raise ToolResolutionError(
        reference, f"{type(obj).__name__} is not a Tool, a Tool subclass or a factory"
    )


def load_import_path(reference: str) -> Tool:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ToolResolutionError(reference, "expected 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ToolResolutionError(
            reference, f"import of {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    obj: object = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ToolResolutionError(
                reference, f"module {module_name!r} has no attribute {attribute!r}"
            ) from exc
    return _instantiate(obj, reference)


def load_entry_point(name: str) -> Tool | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                return _instantiate(ep.load(), f"entry point {name!r} ({ep.value})")
            except ToolResolutionError:
                raise
            except Exception as exc:
                raise ToolResolutionError(
                    f"entry point {name!r} ({ep.value})", f"{type(exc).__name__}: {exc}"
                ) from exc
    return None


def available_entry_points() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def resolve_tool(reference: str, registry: ToolRegistry) -> Tool:
    """Registry name first, then 'module:attribute', then the entry-point group."""
    tool = registry.get_tool(reference)
    if tool is not None:
        return tool
    if ":" in reference:
        return load_import_path(reference)
    tool = load_entry_point(reference)
    if tool is not None:
        return tool
    known = sorted(set(registry.list_tools()) | set(available_entry_points()))
    raise ValueError(
        f"unknown tool {reference!r}; available tools: {', '.join(known) or '(none)'}. "
        "Register it with SteerLLMClient().register_tool(...) or pass 'module:attribute'"
    )
