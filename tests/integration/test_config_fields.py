"""Every OrchestrationConfig / BundleOptions field does something: one check each."""

from __future__ import annotations

import asyncio

import pytest

from steer_llm_sdk.config import ReliabilityConfig, RetryPolicy
from steer_llm_sdk.errors import BudgetExceeded, ProviderError
from steer_llm_sdk.orchestration import (
    BundleTool,
    OrchestrationConfig,
    Orchestrator,
    ReplicateOutput,
    ToolRegistry,
    Usage,
)
from steer_llm_sdk.providers import OpenAIProvider
from steer_tools.llm_bundle import LLMBundleTool

pytestmark = pytest.mark.usefixtures("prefect_backend")


class Recorder(BundleTool):
    name = "recorder"

    def __init__(self, sleep_s: float = 0.0, fail: bool = False, tokens: int = 10):
        self.contexts = []
        self.sleep_s, self.fail, self.tokens = sleep_s, fail, tokens

    async def run_replicate(self, request, seed, context):
        self.contexts.append(context)
        await asyncio.sleep(self.sleep_s)
        if self.fail:
            raise ProviderError("503", category="server_error")
        return ReplicateOutput(data={"v": seed % 2}, cost_usd=0.01,
                               usage=Usage(total_tokens=self.tokens))


def run(tool, options=None, cfg=None):
    registry = ToolRegistry()
    registry.register_tool(tool)
    policy = RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0.0)
    orch = Orchestrator(registry, reliability_config=ReliabilityConfig(retry=policy))
    return orch.run({"query": "q"}, tool.name, options or {"k": 2}, cfg)


async def test_deterministic_reaches_the_tool_context():
    tool = Recorder()
    await run(tool, cfg=OrchestrationConfig(deterministic=True))
    assert all(c.deterministic for c in tool.contexts)


async def test_retry_on_failure_false_runs_each_replicate_once():
    tool = Recorder(fail=True)
    out = await run(tool, cfg=OrchestrationConfig(retry_on_failure=False))
    assert out.status == "failed" and len(tool.contexts) == 2


async def test_max_retries_overrides_the_policy():
    tool = Recorder(fail=True)
    await run(tool, cfg=OrchestrationConfig(max_retries=1))
    assert sorted(c.attempt for c in tool.contexts) == [1, 1, 2, 2]


async def test_per_agent_timeout_fails_slow_replicates():
    tool = Recorder(sleep_s=2.0)
    out = await run(tool, cfg=OrchestrationConfig(per_agent_timeout_ms=200, max_retries=0))
    assert out.status == "failed"
    assert "Timeout" in out.errors["recorder.r1"]["type"] or "timed out" in str(out.errors)


async def test_quality_requirements_downgrade_to_partial():
    out = await run(Recorder(), {"k": 2, "early_stop": False},
                    OrchestrationConfig(quality_requirements={"min_confidence": 0.99}))
    assert out.status == "partial"
    assert "min_confidence 0.99" in out.errors["quality"]["message"]


async def test_bundle_global_budget_and_timeout():
    with pytest.raises(BudgetExceeded) as info:
        await run(Recorder(tokens=50), {"k": 3, "early_stop": False,
                                        "global_budget": {"tokens": 60}},
                  OrchestrationConfig(max_parallel=1))
    assert info.value.budget_type == "tokens" and info.value.limit == 60
    with pytest.raises(BudgetExceeded) as info:
        await run(Recorder(sleep_s=3), {"k": 2, "timeout_ms": 200})
    assert info.value.budget_type == "time" and info.value.limit == 200


async def test_per_replicate_budget_invalidates_expensive_replicates():
    out = await run(Recorder(tokens=500), {"k": 2, "per_replicate_budget": {"tokens": 100}})
    assert out.status == "failed"
    assert "used 500 tokens > per-replicate 100" in out.errors["recorder.r1"]["message"]


async def test_trace_ids_from_bundle_options_are_used():
    tool = Recorder()
    out = await run(tool, {"k": 2, "trace_id": "from-options", "request_id": "rq-opt"})
    assert out.metadata["trace_id"] == "from-options"
    assert {c.trace_id for c in tool.contexts} == {"from-options"}


async def test_enable_circuit_breaker_false_never_opens_a_breaker(llm_simulator,
                                                                  fresh_breakers):
    tool = LLMBundleTool(name="nb", model="openai:gpt-4o-mini+status=503", system="s",
                         user_template="{query}",
                         provider=OpenAIProvider(api_key="k", base_url=llm_simulator.base_url))
    for _ in range(3):
        await run(tool, cfg=OrchestrationConfig(enable_circuit_breaker=False))
    assert tool.provider not in fresh_breakers.states()
