"""Every hand-picked nonsense input of issue 12, one parametrized case each.

Each must be refused with an error that names the field, before any flow run exists and
before any provider call: ``BaseOrchestrator._execute`` (the only path that creates a flow run
or starts the eager first wave of provider calls) fails the test if it is reached.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from steer_llm_sdk.config import (
    CircuitBreakerConfig,
    OrchestrationConfig,
    ReliabilityConfig,
    RetryPolicy,
)
from steer_llm_sdk.errors import OrchestratorError
from steer_llm_sdk.orchestration import Orchestrator, ReliableOrchestrator
from steer_llm_sdk.orchestration.orchestrator import BaseOrchestrator
from steer_llm_sdk.validation import InputError
from steer_tools.bundle import BundleTool
from steer_tools.examples import feasibility_tool
from steer_tools.llm_bundle import LLMBundleTool
from steer_tools.registry import ToolRegistry

NAN, INF = math.nan, math.inf
REJECTED = (ValueError, TypeError, OrchestratorError)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


@pytest.fixture
def no_flow_run(monkeypatch):
    async def forbidden(*args: Any, **kwargs: Any) -> Any:
        pytest.fail("a flow run would have been created")

    monkeypatch.setattr(BaseOrchestrator, "_execute", forbidden)


@pytest.fixture
def registry() -> ToolRegistry:
    reg = ToolRegistry()
    reg.register_tool(feasibility_tool())
    return reg


async def attempt(registry: ToolRegistry, *, request: Any = "q", tool: Any = "feasibility",
                  tool_options: Any = None, config: dict[str, Any] | None = None,
                  on_event: Any = None) -> BaseException:
    with pytest.raises(REJECTED) as info:
        options = OrchestrationConfig(**config) if config is not None else None
        await Orchestrator(registry=registry).run(request, tool, tool_options, options,
                                                  on_event)
    return info.value


CONFIG_CASES = [
    ("budget", {"tokens": NAN}, "budget['tokens']"),
    ("budget", {"tokens": INF}, "budget['tokens']"),
    ("budget", {"cost_usd": -INF}, "budget['cost_usd']"),
    ("budget", {"tokens": True}, "budget['tokens']"),
    ("budget", {"cost_usd": "1"}, "budget['cost_usd']"),
    ("budget", {"tokens": 0}, "budget['tokens']"),
    ("budget", {"ms": -5}, "budget['ms']"),
    ("budget", {"dollars": 1}, "budget['dollars']"),
    ("budget", [1], "budget"),
    ("quality_requirements", {"min_confidence": 2}, "quality_requirements['min_confidence']"),
    ("quality_requirements", {"min_confidence": -1}, "quality_requirements['min_confidence']"),
    ("quality_requirements", {"min_confidence": NAN}, "quality_requirements['min_confidence']"),
    ("quality_requirements", {"min_confidence": True}, "quality_requirements['min_confidence']"),
    ("quality_requirements", {"min_valid_replicates": 100},
     "quality_requirements['min_valid_replicates']"),
    ("quality_requirements", {"min_valid_replicates": 0.5},
     "quality_requirements['min_valid_replicates']"),
    ("quality_requirements", {"min_valid_replicates": 0},
     "quality_requirements['min_valid_replicates']"),
    ("quality_requirements", {"min_vibes": 1}, "quality_requirements['min_vibes']"),
    ("idempotency_key", "", "idempotency_key"),
    ("idempotency_key", " ", "idempotency_key"),
    ("idempotency_key", "\n", "idempotency_key"),
    ("idempotency_key", "k" * 1000, "idempotency_key"),
    ("idempotency_key", 5, "idempotency_key"),
    ("trace_id", "a\rb", "trace_id"),
    ("trace_id", "a\nb", "trace_id"),
    ("trace_id", "a\x00b", "trace_id"),
    ("trace_id", "t" * 1_000_000, "trace_id"),
    ("trace_id", "caf\u00e9", "trace_id"),
    ("trace_id", "", "trace_id"),
    ("trace_id", 5, "trace_id"),
    ("request_id", "a\r\nX-Injected: 1", "request_id"),
    ("request_id", "r" * 129, "request_id"),
    ("request_id", " padded ", "request_id"),
    ("metadata", {"a": object()}, "metadata['a']"),
    ("metadata", {"a": {1, 2}}, "metadata['a']"),
    ("metadata", {"a": b"x"}, "metadata['a']"),
    ("metadata", {"a": NAN}, "metadata['a']"),
    ("metadata", {1: "x"}, "metadata key"),
    ("metadata", _nested(20), "metadata"),
    ("metadata", {"big": "x" * 100_000}, "metadata"),
    ("fallback_tools", "feasibility", "fallback_tools"),
    ("fallback_tools", [5], "fallback_tools[0]"),
    ("fallback_tools", [" "], "fallback_tools[0]"),
    ("max_parallel", True, "max_parallel"),
    ("max_parallel", "3", "max_parallel"),
    ("max_retries", False, "max_retries"),
    ("timeout_ms", INF, "timeout_ms"),
    ("timeout_ms", NAN, "timeout_ms"),
    ("deterministic", 1, "deterministic"),
    ("streaming", "yes", "streaming"),
    ("redactor_cb", "not callable", "redactor_cb"),
]


@pytest.mark.parametrize(("field", "value", "named"), CONFIG_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CONFIG_CASES)])
async def test_config_nonsense_is_refused_naming_the_field(registry, no_flow_run, field, value,
                                                           named):
    error = await attempt(registry, config={field: value})
    assert named in str(error)


OPTION_CASES = [
    ({"early_stp": False}, "tool_options['early_stp']", "did you mean 'early_stop'?"),
    ({"K": 5}, "tool_options['K']", "did you mean 'k'?"),
    ({"epsilom": 0.1}, "tool_options['epsilom']", "did you mean 'epsilon'?"),
    ({"k": 1}, "tool_options['k']", "greater than or equal to 2"),
    ({"k": True}, "k", "not a bool"),
    ({"k": "three"}, "tool_options['k']: got 'three'", "an integer"),
    ({"seeds": [2**70, 1, 2], "k": 3}, "tool_options['seeds'][0]", "<= 9223372036854775807"),
    ({"seeds": [-1, 1, 2], "k": 3}, "tool_options['seeds'][0]", ">= 0"),
    ({"output_schema": {"type": "nope"}}, "['output_schema']['type']", "valid JSON Schema"),
    ({"per_replicate_budget": {"tokens": NAN}}, "['per_replicate_budget']['tokens']", "finite"),
    ({"per_replicate_budget": {"tokens": True}}, "['per_replicate_budget']['tokens']", "> 0"),
    ({"per_replicate_budget": {"ms": 1}}, "['per_replicate_budget']['ms']", "tokens, cost_usd"),
    ({"global_budget": {"cost_usd": "1"}}, "['global_budget']['cost_usd']", "> 0"),
    ({"global_budget": {"tokens": INF}}, "['global_budget']['tokens']", "finite"),
    ({"epsilon": NAN}, "epsilon", "finite"),
    ({"trace_id": "a\nb"}, "tool_options['trace_id']", "printable ASCII"),
    ({"fallback_tools": ["nope"]}, "tool_options['fallback_tools'][0]", "unknown tool"),
    ({"_deterministic": True}, "tool_options['_deterministic']", "reserved"),
    ({"query": object()}, "tool_options['query']", "JSON values only"),
    ("k=3", "tool_options", "dict"),
]


@pytest.mark.parametrize(("options", "named", "rule"), OPTION_CASES,
                         ids=[str(i) for i in range(len(OPTION_CASES))])
async def test_tool_option_nonsense_is_refused(registry, no_flow_run, options, named, rule):
    error = await attempt(registry, tool_options=options)
    assert named in str(error) and rule in str(error)


REQUEST_CASES = [
    ("", "non-blank"), ("   ", "non-blank"), (None, "JSON object"), (object(), "JSON object"),
    ({1, 2}, "JSON object"), (b"bytes", "JSON object"), (["q"], "JSON object"), (5, "JSON"),
    ({}, "non-empty"), ({"query": NAN}, "finite"), ({1: "x"}, "string keys"),
    ({"query": object()}, "JSON values only"), ({"query": "q", "s": {1}}, "JSON values only"),
    ({"query": "x" * 600_000}, "at most 512000 bytes"),
    ({"query": "q", **_nested(900)}, "nested at most 32 levels"),
]


@pytest.mark.parametrize(("request_value", "rule"), REQUEST_CASES,
                         ids=[str(i) for i in range(len(REQUEST_CASES))])
async def test_request_nonsense_is_refused(registry, no_flow_run, request_value, rule):
    error = await attempt(registry, request=request_value)
    assert str(error).startswith("request") and rule in str(error)


def test_request_limits_are_configurable(monkeypatch):
    from steer_llm_sdk.validation import check_request

    monkeypatch.setenv("STEER_MAX_REQUEST_BYTES", "50")
    with pytest.raises(InputError, match="at most 50 bytes"):
        check_request({"query": "x" * 60})
    monkeypatch.setenv("STEER_MAX_REQUEST_DEPTH", "2")
    monkeypatch.delenv("STEER_MAX_REQUEST_BYTES")
    with pytest.raises(InputError, match="nested at most 2 levels"):
        check_request({"query": "q", "a": {"b": {"c": 1}}})
    monkeypatch.setenv("STEER_MAX_REQUEST_DEPTH", "lots")
    with pytest.raises(InputError, match="STEER_MAX_REQUEST_DEPTH: got 'lots'"):
        check_request("q")


async def test_run_level_cross_checks(registry, no_flow_run):
    error = await attempt(registry, tool_options={"k": 3},
                          config={"quality_requirements": {"min_valid_replicates": 4}})
    assert "quality_requirements['min_valid_replicates']: got 4" in str(error)
    assert "<= 3" in str(error)
    error = await attempt(registry, config={"fallback_tools": ["nope"]})
    assert "unknown tool 'nope'" in str(error) and "fallback_tools[0]" in str(error)
    error = await attempt(registry, on_event="print")
    assert str(error).startswith("on_event: got 'print'")
    with pytest.raises(InputError, match=r"tool_options\['epsilom'\]"):  # planner path too
        await ReliableOrchestrator(registry=registry).run("q", None, {"epsilom": 0.1})


async def test_config_assigned_after_construction_is_rechecked(registry, no_flow_run):
    cfg = OrchestrationConfig()
    cfg.budget = {"tokens": True}  # pydantic does not validate assignment
    with pytest.raises(InputError, match=r"config\['budget'\]\['tokens'\]: got True"):
        await Orchestrator(registry=registry).run("q", "feasibility", None, cfg)


def test_run_sync_with_k_1_raises_before_any_flow_run(registry, no_flow_run):
    with pytest.raises(InputError, match=r"tool_options\['k'\]: got 1; accepted: .* to 2"):
        Orchestrator(registry=registry).run_sync("q", "feasibility", {"k": 1})


@pytest.mark.parametrize(("model", "field", "value"), [
    (RetryPolicy, "initial_delay", INF), (RetryPolicy, "max_delay", INF),
    (RetryPolicy, "max_delay", NAN), (RetryPolicy, "backoff_factor", INF),
    (RetryPolicy, "jitter", True), (RetryPolicy, "max_attempts", True),
    (CircuitBreakerConfig, "reset_timeout_s", INF),
    (CircuitBreakerConfig, "reset_timeout_s", NAN),
    (CircuitBreakerConfig, "failure_threshold", True),
    (CircuitBreakerConfig, "enabled", "no"),
    (ReliabilityConfig, "idempotency_ttl_s", INF),
    (ReliabilityConfig, "idempotency_ttl_s", NAN),
    (ReliabilityConfig, "max_fallback_attempts", True),
])
def test_reliability_nonsense_is_refused(model, field, value):
    with pytest.raises(ValidationError) as info:
        model(**{field: value})
    assert field in str(info.value)


# --- tool-author mistakes, caught when the tool is built or registered -----------------------

class _SyncReplicate(BundleTool):
    name = "sync-replicate"

    def run_replicate(self, request, seed, context):  # type: ignore[override]
        return {"x": 1}


class _SyncExecute(BundleTool):
    name = "sync-execute"

    async def run_replicate(self, request, seed, context):
        return {"x": 1}

    def execute(self, request, options, event_sink=None):  # type: ignore[override]
        return {}


class _BadSchema(BundleTool):
    name = "bad-schema"
    output_schema = {"type": "nope"}

    async def run_replicate(self, request, seed, context):
        return {"x": 1}


class _BadModel(BundleTool):
    name = "bad-model"
    output_model = dict  # type: ignore[assignment]

    async def run_replicate(self, request, seed, context):
        return {"x": 1}


@pytest.mark.parametrize(("tool", "fix"), [
    (_SyncReplicate(), "declare it `async def run_replicate(self, request, seed, context)`"),
    (_SyncExecute(), "declare it `async def execute("),
    (_BadSchema(), "_BadSchema.output_schema['type']: got 'nope'; accepted: a valid JSON Schema"),
    (_BadModel(), "output_model must be a pydantic BaseModel subclass"),
])
def test_register_tool_catches_contract_mistakes(tool, fix):
    with pytest.raises((TypeError, ValueError)) as info:
        ToolRegistry().register_tool(tool)
    assert fix in str(info.value)


@pytest.mark.parametrize(("template", "fix"), [
    ('Answer as {"label": "yes"} about: {query}', "escape literal braces as {{ }}"),
    ("Assess {query", "escape literal braces as {{ }}"),
    ("Assess } {query}", "escape literal braces as {{ }}"),
    ("", "non-blank"),
])
def test_llm_bundle_template_mistakes_fail_when_built(template, fix):
    with pytest.raises(InputError) as info:
        LLMBundleTool("t", "openai:gpt-4o-mini", "sys", template)
    assert str(info.value).startswith("user_template") and fix in str(info.value)


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"output_schema": {"type": "nope"}}, "output_schema['type']"),
    ({"output_schema": {"properties": []}}, "output_schema['properties']"),
    ({"output_schema": "a schema"}, "output_schema"),
    ({"temperature": NAN}, "temperature"), ({"temperature": True}, "temperature"),
    ({"k": 1}, "k"), ({"max_tokens": 0}, "max_tokens"),
])
def test_llm_bundle_arguments_fail_when_built(kwargs, named):
    with pytest.raises(InputError) as info:
        LLMBundleTool("t", "openai:gpt-4o-mini", "sys", "Q: {query}", **kwargs)
    assert str(info.value).startswith(named)


def test_valid_inputs_still_pass():
    class Answer(BaseModel):
        label: str

    tool = LLMBundleTool("t", "openai:gpt-4o-mini", "sys", 'As {{"label": ...}}: {query}',
                         output_schema=Answer)
    assert tool.template_fields == {"query"}
    ToolRegistry().register_tool(tool)
    tool.check_options({"k": 4, "seeds": [0, 1, 2, 2**63 - 1], "early_stop": False,
                        "fallback_tools": ["x"], "per_replicate_budget": {"tokens": 10}})
    cfg = OrchestrationConfig(budget={"tokens": 5, "cost_usd": 0.5, "ms": 1000.0},
                              quality_requirements={"min_confidence": 1,
                                                    "min_valid_replicates": 2},
                              trace_id="t-1 2", metadata={"team": "x", "n": [1, 2.5, None]},
                              idempotency_key="key 1")
    assert cfg.budget == {"tokens": 5.0, "cost_usd": 0.5, "ms": 1000.0}


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"request": ""}, "request"),
    ({"request": {"q": object()}}, "request['q']"),
    ({"tool": 5}, "tool"),
    ({"tool": "feasibility", "tool_options": {"k": "three"}}, "tool_options['k']"),
    ({"tool": "feasibility", "tool_options": {"epsilom": 0.1}}, "did you mean 'epsilon'?"),
    ({"tool_options": {"_x": 1}}, "tool_options['_x']"),
    ({"idempotency_key": " "}, "idempotency_key"),
])
def test_trigger_checks_locally_before_any_api_call(monkeypatch, kwargs, named):
    """No server is configured: reaching the API would be a ServerUnavailableError instead."""
    from steer_llm_sdk.trigger import trigger_deployment

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(InputError) as info:
        trigger_deployment("feasibility-daily", **kwargs)
    assert named in str(info.value)


def test_deployment_defaults_are_checked_and_the_schema_is_nested():
    from prefect.utilities.schema_tools.validation import validate
    from steer_llm_sdk.deployments.serve import build_deployments

    with pytest.raises(InputError, match=r"tool_options\['K'\].*did you mean 'k'"):
        build_deployments(parameters={"request": "q", "tool": "feasibility",
                                      "tool_options": {"K": 3}})
    deployment = build_deployments()[0]
    schema = deployment._parameter_openapi_schema.model_dump(exclude_unset=True)
    assert validate(deployment.parameters, schema) == []  # its own defaults pass
    for bad in ({"config": {"budget": {"dollars": 1}}}, {"tool_options": {"k": "three"}},
                {"config": {"quality_requirements": {"min_confidence": 2}}},
                {"tool_options": {"per_replicate_budget": {"tokens": True}}}):
        errors = validate({**deployment.parameters, **bad}, schema)
        assert errors, bad
