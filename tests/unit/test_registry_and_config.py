"""Registry, client and configuration validation: bad input gets a clear message."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from steer_llm_sdk import SteerLLMClient
from steer_llm_sdk.config import OrchestrationConfig, RetryPolicy
from steer_llm_sdk.errors import BudgetExceeded, ToolResolutionError
from steer_llm_sdk.events import EventEmitter
from steer_tools import BundleOptions, BundleTool, Tool, ToolRegistry
from steer_tools.resolve import load_import_path, resolve_tool


class Hello(Tool):
    name = "hello"
    version = "1.2.0"
    description = "says hello"

    async def execute(self, request, options, event_sink=None):
        return {"greeting": f"hello {request.get('query')}"}


class HelloV2(Hello):
    version = "2.0.0"


class Bundle(BundleTool):
    name = "bundle"

    async def run_replicate(self, request, seed, context):
        return {"seed": seed}


def test_register_rejects_non_tools_and_duplicates():
    registry = ToolRegistry()
    with pytest.raises(TypeError, match="expects a steer_tools.Tool instance, got str"):
        registry.register_tool("hello")
    registry.register_tool(Hello())
    with pytest.raises(ValueError, match=r"version 1\.2\.0.*version 2\.0\.0"):
        registry.register_tool(HelloV2())
    registry.register_tool(HelloV2(), replace=True)
    assert registry.list_tools() == {"hello": {"version": "2.0.0", "description": "says hello"}}


def test_registry_queries_and_metadata():
    registry = ToolRegistry()
    registry.register_tool(Hello())
    registry.register_tool(Bundle())
    assert registry.has_tool("hello") and not registry.has_tool("nope")
    assert registry.get_tool("nope") is None
    meta = registry.get_tool_metadata()
    assert meta["bundle"]["is_bundle"] is True and meta["hello"]["is_bundle"] is False
    assert registry.unregister("hello") is True and registry.unregister("hello") is False
    registry.clear()
    assert len(registry) == 0


def test_client_uses_global_registry_or_its_own():
    own = SteerLLMClient(registry=ToolRegistry())
    own.register_tool(Hello())
    assert own.list_tools() == {"hello": {"version": "1.2.0", "description": "says hello"}}
    assert "hello" not in SteerLLMClient(registry=ToolRegistry()).list_tools()


def test_resolve_by_import_path_and_errors(monkeypatch):
    assert isinstance(load_import_path("steer_tools.examples:feasibility_tool"), BundleTool)
    with pytest.raises(ToolResolutionError, match="not under an allowed prefix"):
        load_import_path("no_such_mod:tool")
    monkeypatch.setenv("STEER_TOOL_MODULES", "no_such_mod")
    with pytest.raises(ToolResolutionError, match="import of 'no_such_mod' failed"):
        load_import_path("no_such_mod:tool")
    with pytest.raises(ToolResolutionError, match="has no attribute 'missing'"):
        load_import_path("steer_tools.examples:missing")
    with pytest.raises(ValueError, match="unknown tool 'ghost'"):
        resolve_tool("ghost", ToolRegistry())
    assert resolve_tool("feasibility", ToolRegistry()).name == "feasibility"  # entry point


@pytest.mark.parametrize(("budget", "message"), [
    ({"dollars": 1}, r"budget\['dollars'\]: got 'dollars'; accepted: a key among tokens, "
                     "cost_usd, ms"),
    ({"tokens": 0}, r"budget\['tokens'\]: got 0; accepted: a finite number > 0"),
    ({"cost_usd": -1}, r"budget\['cost_usd'\]: got -1; accepted: a finite number > 0"),
])
def test_budget_validation(budget, message):
    with pytest.raises(ValidationError, match=message):
        OrchestrationConfig(budget=budget)


def test_config_rejects_unknown_fields_and_bad_timeouts():
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        OrchestrationConfig(max_paralel=3)
    with pytest.raises(ValidationError, match="per_agent_timeout_ms must not exceed timeout_ms"):
        OrchestrationConfig(timeout_ms=100, per_agent_timeout_ms=200)
    with pytest.raises(ValidationError, match=r"quality_requirements\['min_vibes'\]"):
        OrchestrationConfig(quality_requirements={"min_vibes": 1})


def test_config_parameters_are_json_without_the_redactor():
    cfg = OrchestrationConfig(redactor_cb=lambda d: d, budget={"tokens": 10})
    params = cfg.to_parameters()
    assert "redactor_cb" not in params and params["budget"] == {"tokens": 10}


def test_bundle_options_validation():
    assert BundleOptions().k == 3 and BundleOptions(k=4).resolved_seeds() == [1, 2, 3, 4]
    with pytest.raises(ValidationError):
        BundleOptions(k=1)
    with pytest.raises(ValidationError):
        BundleOptions(k=51)
    BundleOptions(k=50)
    with pytest.raises(ValidationError, match="seeds has 2 entries but k=3"):
        BundleOptions(k=3, seeds=[1, 2])
    with pytest.raises(ValidationError, match="seeds must be distinct"):
        BundleOptions(k=2, seeds=[5, 5])
    with pytest.raises(ValidationError, match=r"per_replicate_budget\['ms'\]: got 'ms'"):
        BundleOptions(per_replicate_budget={"ms": 5})
    with pytest.raises(ValidationError):
        BundleOptions(epsilon=1.5)


def test_retry_policy_delays():
    # 0.5, 1.0, 2.0, 4.0 capped at 3.0
    policy = RetryPolicy(max_attempts=5, initial_delay=0.5, backoff_factor=2.0, max_delay=3.0)
    assert policy.delays() == [0.5, 1.0, 2.0, 3.0]


def test_budget_exceeded_carries_fields():
    err = BudgetExceeded("tokens", 100, 150)
    assert (err.budget_type, err.limit, err.actual) == ("tokens", 100, 150)
    assert err.to_dict()["code"] == "budget_exceeded"
    assert "Raise OrchestrationConfig.budget['tokens']" in str(err)


async def test_event_emitter_redacts_and_survives_broken_callbacks():
    seen = []
    emitter = EventEmitter(seen.append, trace_id="t", request_id="r",
                           redactor=lambda d: {k: ("***" if k == "secret" else v)
                                               for k, v in d.items()})
    await emitter.emit("tool_started", tool_name="x", secret="s3cr3t", keep=1)
    assert seen[0].data == {"secret": "***", "keep": 1} and seen[0].trace_id == "t"

    def broken(event):
        raise RuntimeError("callback bug")

    await EventEmitter(broken, trace_id="t", request_id="r").emit("tool_started")
    quiet = EventEmitter(seen.append, trace_id="t", request_id="r", streaming=False)
    await quiet.emit("replicate_done", replicate_id="r1")
    assert len(seen) == 1  # streaming off: per-replicate events are not delivered


async def test_bundle_tool_executes_directly_without_prefect():
    result = await Bundle().execute({"query": "x"}, {"k": 3})
    assert [r["data"] for r in result.content["replicates"]] == [{"seed": 1}, {"seed": 2},
                                                                  {"seed": 3}]
