"""Tool registry: how a host application makes its tools known to the engine."""

from __future__ import annotations

import threading
from typing import Any

from steer_tools.base import Tool


class ToolRegistry:
    """Name -> Tool. Thread-safe, because hosts register tools from web workers."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}
        self._lock = threading.Lock()

    def register_tool(self, tool: Tool, *, replace: bool = False) -> None:
        if not isinstance(tool, Tool):
            raise TypeError(
                f"register_tool expects a steer_tools.Tool instance, got {type(tool).__name__}; "
                "subclass Tool or BundleTool (or use LLMBundleTool)"
            )
        if not tool.name or not isinstance(tool.name, str):
            raise ValueError(f"{type(tool).__name__}.name must be a non-empty string")
        tool.check_contract()
        with self._lock:
            existing = self._tools.get(tool.name)
            if existing is not None and not replace and existing is not tool:
                raise ValueError(
                    f"a tool named {tool.name!r} is already registered (version "
                    f"{existing.version}); cannot register version {tool.version}. Unregister "
                    "it first or pass replace=True"
                )
            self._tools[tool.name] = tool

    def unregister(self, name: str) -> bool:
        with self._lock:
            return self._tools.pop(name, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._tools.clear()

    def get_tool(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def has_tool(self, name: str) -> bool:
        return name in self._tools

    def list_tools(self) -> dict[str, dict[str, str]]:
        return {
            name: {"version": tool.version, "description": tool.description}
            for name, tool in sorted(self._tools.items())
        }

    def get_tool_metadata(self) -> dict[str, dict[str, Any]]:
        """Everything a planner needs to choose between tools, as plain dicts."""
        return {name: tool.metadata() for name, tool in sorted(self._tools.items())}

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools


_GLOBAL_REGISTRY = ToolRegistry()


def get_global_registry() -> ToolRegistry:
    return _GLOBAL_REGISTRY
