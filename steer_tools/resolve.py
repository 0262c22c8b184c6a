"""Find a tool by name or import path, so a deployed flow run in another process can load the
tool it was asked for without the caller's in-memory registry.

A tool reference can come from whoever may create a flow run (REST, UI, `steer trigger`), so
resolution is an allowlist, checked before anything is imported or called:

1. a name registered in the caller's :class:`ToolRegistry`;
2. an entry point of the group ``steer_llm_sdk.tools`` (installed packages declare these);
3. ``'package.module:attribute'`` only when the module lies under a prefix the operator allows
   in ``STEER_TOOL_MODULES`` (comma-separated, e.g. ``myapp.tools,acme_tools``); the SDK's own
   ``steer_tools.examples`` is always allowed.

Whatever a reference or entry point names must be a :class:`Tool` instance, a concrete
``Tool`` subclass (instantiated without arguments) or a function decorated with
:func:`tool_factory`; any other object is refused without being called.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from steer_llm_sdk.errors import ToolResolutionError
from steer_llm_sdk.validation import InputError, check_name, did_you_mean
from steer_tools.base import Tool
from steer_tools.registry import ToolRegistry

ENTRY_POINT_GROUP = "steer_llm_sdk.tools"
MODULES_ENV = "STEER_TOOL_MODULES"
BUILTIN_MODULES = ("steer_tools.examples",)
_FACTORY_MARK = "__steer_tool_factory__"
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*\Z")

F = TypeVar("F", bound=Callable[..., Any])


def tool_factory(function: F) -> F:
    """Mark a zero-argument function returning a Tool as loadable by reference
    ('module:function' or an entry point). Unmarked callables are never called."""
    setattr(function, _FACTORY_MARK, True)
    return function


def allowed_module_prefixes() -> tuple[str, ...]:
    """The module prefixes 'module:attribute' references may name (read at every call)."""
    extra = [p.strip() for p in os.environ.get(MODULES_ENV, "").split(",") if p.strip()]
    return (*BUILTIN_MODULES, *extra)


def _module_allowed(module_name: str, prefixes: tuple[str, ...]) -> bool:
    return any(module_name == p or module_name.startswith(p + ".") for p in prefixes)


def _instantiate(obj: object, reference: str) -> Tool:
    if isinstance(obj, Tool):
        return obj
    if isinstance(obj, type) and issubclass(obj, Tool):
        if inspect.isabstract(obj):
            raise ToolResolutionError(reference, f"{obj.__name__} is an abstract Tool class; "
                                      "name a concrete subclass or an instance")
        return obj()
    if callable(obj) and getattr(obj, _FACTORY_MARK, False) is True:
        made = obj()
        if isinstance(made, Tool):
            return made
        raise ToolResolutionError(
            reference, f"factory returned {type(made).__name__}, not a steer_tools.Tool"
        )
    raise ToolResolutionError(
        reference, f"{type(obj).__name__} is not a Tool, a Tool subclass or a function marked "
        "@steer_tools.tool_factory; nothing was called"
    )


def check_import_path(reference: str) -> tuple[str, str]:
    """Syntax and allowlist of a 'module:attribute' reference, without importing anything."""
    module_name, _, attribute = reference.partition(":")
    if not _MODULE.match(module_name) or not _ATTRIBUTE.match(attribute):
        raise ToolResolutionError(reference, "expected 'package.module:attribute' (public "
                                  "identifiers only)")
    prefixes = allowed_module_prefixes()
    if not _module_allowed(module_name, prefixes):
        raise ToolResolutionError(
            reference, f"module {module_name!r} is not under an allowed prefix "
            f"({', '.join(prefixes)}); nothing was imported. Register the tool, publish it as "
            f"an entry point of group {ENTRY_POINT_GROUP!r}, or allow its package with "
            f"{MODULES_ENV}={module_name.split('.')[0]} in the environment of this process "
            "(and of the workers)")
    return module_name, attribute


def load_import_path(reference: str) -> Tool:
    module_name, attribute = check_import_path(reference)
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


def resolve_tool(reference: str, registry: ToolRegistry, *, field: str = "tool_name") -> Tool:
    """Registry name first, then an allowed 'module:attribute', then the entry-point group."""
    if not isinstance(reference, str):
        raise InputError(field, reference, "a tool name (str): a registered tool, an entry "
                         "point name or 'package.module:attribute'")
    check_name(field, reference)
    tool = registry.get_tool(reference)
    if tool is not None:
        return tool
    if ":" in reference:
        return load_import_path(reference)
    tool = load_entry_point(reference)
    if tool is not None:
        return tool
    known = sorted(set(registry.list_tools()) | set(available_entry_points()))
    hint = did_you_mean(reference, known)
    raise ValueError(
        f"unknown tool {reference!r}; available tools: {', '.join(known) or '(none)'}"
        f"{' (' + hint + ')' if hint else ''}. {field} must be a registered tool (register it "
        f"with SteerLLMClient().register_tool(...)), an entry point of group "
        f"{ENTRY_POINT_GROUP!r}, or 'module:attribute' under a prefix allowed by {MODULES_ENV}"
    )
