"""Tool references are an allowlist: nothing outside it is imported or called (issue 12).

Before: ``await Orchestrator().run("q", "sys:exit")`` ended the whole process, ``"this:s"``
printed the Zen of Python (an import side effect) and ``"os:getpid"`` was called."""

from __future__ import annotations

import os
import sys

import pytest

from steer_llm_sdk.errors import ToolResolutionError
from steer_llm_sdk.orchestration import Orchestrator
from steer_llm_sdk.validation import InputError
from steer_tools.bundle import BundleTool
from steer_tools.registry import ToolRegistry
from steer_tools.resolve import allowed_module_prefixes, resolve_tool, tool_factory


@pytest.fixture(autouse=True)
def _no_operator_allowlist(monkeypatch):
    monkeypatch.delenv("STEER_TOOL_MODULES", raising=False)


@pytest.fixture
def getpid_calls(monkeypatch):
    calls: list[int] = []
    real = os.getpid
    monkeypatch.setattr(os, "getpid", lambda: calls.append(1) or real())
    return calls


@pytest.mark.parametrize("reference", ["sys:exit", "os:getpid", "this:s", "subprocess:run",
                                       "builtins:exec", "os.path:join"])
async def test_references_outside_the_allowlist_are_refused_before_import(
        reference, capsys, getpid_calls):
    module = reference.split(":")[0]
    was_imported = module in sys.modules
    sys.modules.pop("this", None)
    with pytest.raises(ToolResolutionError) as info:
        await Orchestrator(registry=ToolRegistry()).run("q", reference)
    message = str(info.value)
    assert repr(reference) in message  # the reference ...
    assert "not under an allowed prefix" in message and "nothing was imported" in message
    assert "STEER_TOOL_MODULES=" in message  # ... the rule and how to allow it
    assert ("this" in sys.modules) is False
    assert (module in sys.modules) is was_imported  # nothing new imported
    assert "Zen of Python" not in capsys.readouterr().out
    assert getpid_calls == []  # and nothing called; the process is still here to assert it


async def test_an_allowed_module_still_resolves_only_tools(monkeypatch, getpid_calls):
    monkeypatch.setenv("STEER_TOOL_MODULES", "os, sys")
    for reference in ("os:getpid", "sys:exit"):
        with pytest.raises(ToolResolutionError, match="not a Tool, a Tool subclass or a "
                           "function marked @steer_tools.tool_factory; nothing was called"):
            await Orchestrator(registry=ToolRegistry()).run("q", reference)
    assert getpid_calls == []


def test_prefix_matching_is_by_package_not_by_string(monkeypatch):
    monkeypatch.setenv("STEER_TOOL_MODULES", "steer_tool")
    assert allowed_module_prefixes() == ("steer_tools.examples", "steer_tool")
    with pytest.raises(ToolResolutionError, match="not under an allowed prefix"):
        resolve_tool("steer_tools.bundle:BundleTool", ToolRegistry())
    monkeypatch.setenv("STEER_TOOL_MODULES", "steer_tools")
    with pytest.raises(ToolResolutionError, match="abstract Tool class"):
        resolve_tool("steer_tools.bundle:BundleTool", ToolRegistry())


@pytest.mark.parametrize("reference", ["steer_tools.examples:_private", "a b:c", ":x", "m:",
                                       "steer_tools.examples:__class__", "../x:y"])
def test_malformed_references_are_refused(reference):
    with pytest.raises(ToolResolutionError, match="expected 'package.module:attribute'"):
        resolve_tool(reference, ToolRegistry())


def test_builtin_examples_and_entry_points_resolve():
    assert isinstance(resolve_tool("steer_tools.examples:feasibility_tool", ToolRegistry()),
                      BundleTool)
    assert resolve_tool("feasibility", ToolRegistry()).name == "feasibility"


def test_marked_factories_and_subclasses_resolve(monkeypatch, tmp_path):
    (tmp_path / "acme_tools_i12.py").write_text(
        "from steer_tools import Tool, tool_factory\n"
        "class Echo(Tool):\n"
        "    name = 'echo'\n"
        "    async def execute(self, request, options, event_sink=None):\n"
        "        return request\n"
        "@tool_factory\n"
        "def make():\n"
        "    return Echo()\n"
        "def unmarked():\n"
        "    raise SystemExit('called')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("STEER_TOOL_MODULES", "acme_tools_i12")
    assert resolve_tool("acme_tools_i12:make", ToolRegistry()).name == "echo"
    assert resolve_tool("acme_tools_i12:Echo", ToolRegistry()).name == "echo"
    with pytest.raises(ToolResolutionError, match="function is not a Tool"):
        resolve_tool("acme_tools_i12:unmarked", ToolRegistry())  # never called: no SystemExit
    assert tool_factory.__name__ == "tool_factory"


@pytest.mark.parametrize("name", [5, 1.5, True, b"feasibility", ["feasibility"], ""])
async def test_a_tool_name_that_is_not_a_string_is_a_clear_error(name):
    with pytest.raises(InputError, match=r"^tool_name: got .*; accepted: a (tool name|non-)"):
        await Orchestrator(registry=ToolRegistry()).run("q", name)


def test_unknown_tool_suggests_the_closest_name():
    with pytest.raises(ValueError, match=r"unknown tool 'feasibilty'.*did you mean "
                       r"'feasibility'\?"):
        resolve_tool("feasibilty", ToolRegistry())
