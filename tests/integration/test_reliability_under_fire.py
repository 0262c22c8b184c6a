"""Issue 10, items 2-4 and 6-8: breakers that compose with retries, caller errors that never
count against a provider, time stops that keep finished work, a category for every failure,
and usage that matches what the provider billed.

Everything runs for real: the openai client over HTTP against the session simulator (faults
chosen per request), Prefect runs on the session harness, the process-wide pybreaker
breakers (reset per test by ``fresh_breakers``). Token totals are checked against the
simulator's own records of what it answered (``SimulatorStats.billed_tokens``).
"""

from __future__ import annotations

import asyncio

import pytest

from steer_llm_sdk.config import CircuitBreakerConfig, ReliabilityConfig, RetryPolicy
from steer_llm_sdk.errors import BudgetExceeded, ProviderError
from steer_llm_sdk.orchestration import (
    BundleTool,
    OrchestrationConfig,
    OrchestrationOutput,
    Orchestrator,
    ReplicateOutput,
    ToolRegistry,
)
from steer_llm_sdk.providers import OpenAIProvider
from steer_tools.evidence import Usage
from steer_tools.llm_bundle import LLMBundleTool
from tests.helpers.prefect_api import read_task_runs

pytestmark = pytest.mark.usefixtures("prefect_backend")

CHAT = "/v1/chat/completions"
FAST_RETRIES = RetryPolicy(max_attempts=3, initial_delay=0.05, backoff_factor=1.0, jitter=0.0)


def llm_tool(sim, model: str = "gpt-4o-mini", name: str = "fire") -> LLMBundleTool:
    return LLMBundleTool(name=name, model=f"openai:{model}", system="Answer.",
                         user_template="{query}",
                         provider=OpenAIProvider(api_key="sk-test", base_url=sim.base_url))


def orchestrator(tool: BundleTool, reliability: ReliabilityConfig | None = None
                 ) -> Orchestrator:
    registry = ToolRegistry()
    registry.register_tool(tool)
    return Orchestrator(registry, reliability_config=reliability)


def k3(**extra: object) -> dict[str, object]:
    return {"k": 3, "early_stop": False, **extra}


# -- items 2 and 3: breakers that compose with retries ---------------------------------------

async def test_default_config_rescues_a_transient_fault(llm_simulator, fresh_breakers):
    """k=3, each replicate's first two attempts answer 503: the default retries rescue every
    replicate, so the default breaker must not fail the run (it did: 5 requests, failed)."""
    llm_simulator.reset()
    tool = llm_tool(llm_simulator, "gpt-4o-mini+fail=2:503")
    out = await orchestrator(tool).run("q", tool.name, k3())
    assert out.status == "succeeded", out.errors
    assert len(llm_simulator.requests_for(path=CHAT)) == 9
    assert fresh_breakers.states()[tool.provider] == "closed"


@pytest.mark.parametrize(("fault", "category"), [
    ("status=429", "rate_limit"), ("status=500", "server_error"), ("drop", "network"),
    ("malformed", "server_error")])
async def test_always_failing_runs_report_the_real_cause(llm_simulator, fresh_breakers,
                                                         fault, category):
    llm_simulator.reset()
    tool = llm_tool(llm_simulator, f"gpt-4o-mini+{fault}")
    orch = orchestrator(tool, ReliabilityConfig(retry=FAST_RETRIES))
    out = await orch.run("q", tool.name, k3())
    assert out.status == "failed"
    assert {e["category"] for e in out.errors.values() if "category" in e} == {category}
    assert len(llm_simulator.requests_for(path=CHAT)) == 9  # 3 replicates x 3 attempts


async def test_an_open_breaker_reports_the_providers_last_real_error(llm_simulator,
                                                                      fresh_breakers):
    llm_simulator.reset()
    tool = llm_tool(llm_simulator, "gpt-4o-mini+status=500")
    reliability = ReliabilityConfig(retry=FAST_RETRIES, default_breaker=CircuitBreakerConfig(
        failure_threshold=2))
    orch = orchestrator(tool, reliability)
    for _ in range(4):  # sustained: runs whose replicates all gave up, until it opens
        first = await orch.run("q", tool.name, k3())
        if fresh_breakers.states()[tool.provider] == "open":
            break
    assert fresh_breakers.states()[tool.provider] == "open"
    for error in first.errors.values():
        if error.get("category") == "circuit_open":  # opened under this run's last replicate
            assert error["last_error"]["category"] == "server_error"
        else:
            assert error["category"] == "server_error"
    sent = len(llm_simulator.requests_for(path=CHAT))
    second = await orch.run("q", tool.name, k3())
    assert len(llm_simulator.requests_for(path=CHAT)) == sent  # failed fast
    error = second.errors[tool.name]
    assert error["category"] == "circuit_open"
    assert error["last_error"]["category"] == "server_error"
    assert error["last_error"]["status_code"] == 500
    assert "HTTP 500" in error["message"]


async def test_recovery_the_first_run_after_the_reset_timeout_succeeds(llm_simulator,
                                                                        fresh_breakers):
    llm_simulator.reset()
    breaker = CircuitBreakerConfig(failure_threshold=1, reset_timeout_s=0.5)
    reliability = ReliabilityConfig(retry=FAST_RETRIES, default_breaker=breaker)
    failing = llm_tool(llm_simulator, "gpt-4o-mini+status=503", name="down")
    healthy = llm_tool(llm_simulator, "gpt-4o-mini", name="up")  # same endpoint, same breaker
    await orchestrator(failing, reliability).run("q", failing.name, k3())
    assert fresh_breakers.states()[healthy.provider] == "open"
    await asyncio.sleep(0.6)
    llm_simulator.reset()
    out = await orchestrator(healthy, reliability).run("q", healthy.name, k3())
    assert out.status == "succeeded", out.errors  # the others waited for the trial
    assert len(llm_simulator.requests_for(path=CHAT)) == 3
    assert fresh_breakers.listener.transitions_for(healthy.provider)[-2:] == [
        ("open", "half_open"), ("half_open", "closed")]


# -- item 4: a caller's input never opens a breaker ------------------------------------------

@pytest.mark.parametrize("bad", ["trace\r\nX-Evil: 1", "id\x00nul", "line\nfeed"])
async def test_invalid_ids_fail_before_sending_and_count_for_nothing(llm_simulator,
                                                                      fresh_breakers, bad):
    llm_simulator.reset()
    tool = llm_tool(llm_simulator)
    orch = orchestrator(tool, ReliabilityConfig(default_breaker=CircuitBreakerConfig(
        failure_threshold=1)))
    with pytest.raises(ValueError, match="trace_id"):
        await orch.run("q", tool.name, k3(trace_id=bad))
    with pytest.raises(ValueError, match="request_id"):
        OrchestrationConfig(request_id=bad)
    # the provider guards itself too (ids can reach it from custom tools)
    with pytest.raises(ProviderError, match="trace_id") as caught:
        await tool.llm.complete([{"role": "user", "content": "q"}], "gpt-4o-mini",
                                trace_id=bad)
    assert caught.value.category == "invalid_request" and not caught.value.is_retryable
    assert llm_simulator.requests_for(path=CHAT) == []
    assert fresh_breakers.states().get(tool.provider, "closed") == "closed"
    out = await orch.run("q", tool.name, k3())
    assert out.status == "succeeded"


# -- items 6, 7 and 8: time stops, categories, accounting -------------------------------------

class OneHangs(BundleTool):
    """r3 hangs on the provider (or any replicate listed); the others answer at once."""

    name = "one-hangs"
    eager_start = True

    def __init__(self, sim, hanging: tuple[str, ...] = ("r3",), hang_s: float = 30.0):
        self.llm = OpenAIProvider(api_key="sk-test", base_url=sim.base_url)
        self.provider = self.llm.breaker_name
        self.hanging = hanging
        self.hang_s = hang_s

    async def run_replicate(self, request, seed, context):
        model = "gpt-4o-mini" + (f"+hang={self.hang_s:g}" if context.replicate_id in
                                 self.hanging else "")
        done = await self.llm.complete([{"role": "user", "content": request["query"]}], model,
                                       seed=seed, replicate_id=context.replicate_id,
                                       deadline=context.deadline_monotonic)
        return ReplicateOutput(data={"answer": done.content[:20]}, usage=Usage(**done.usage),
                               cost_usd=done.cost_usd)


async def test_a_time_stop_hands_back_the_finished_replicates(llm_simulator, fresh_breakers):
    llm_simulator.reset()
    tool = OneHangs(llm_simulator)
    with pytest.raises(BudgetExceeded) as caught:
        await orchestrator(tool).run("q", tool.name, k3(), OrchestrationConfig(timeout_ms=2500))
    stop = caught.value
    assert stop.budget_type == "time"
    partial = stop.partial_output
    assert isinstance(partial, OrchestrationOutput) and partial.status == "partial"
    bundle = partial.content
    assert [r["id"] for r in bundle["replicates"]] == ["r1", "r2"]
    assert bundle["meta"]["k_completed"] == 2
    assert partial.errors[f"{tool.name}.time"]["unfinished_replicates"] == ["r3"]
    # accounting: the two answers billed, the hung call unknowable
    assert partial.usage["total_tokens"] == llm_simulator.stats.billed_tokens(path=CHAT) > 0
    assert partial.metadata["unaccounted_calls"] == 1


async def test_per_replicate_timeouts_are_category_timeout(llm_simulator, fresh_breakers):
    llm_simulator.reset()
    tool = OneHangs(llm_simulator, hang_s=5)
    cfg = OrchestrationConfig(per_agent_timeout_ms=400, max_retries=0)
    out = await orchestrator(tool).run("q", tool.name, k3(), cfg)
    assert out.status == "partial"
    error = out.errors[f"{tool.name}.r3"]
    assert error["category"] == "timeout" and error["is_retryable"]
    # the Prefect UI keeps the full failure: the task run's state says what happened
    runs = await read_task_runs(out.metadata["flow_run_id"], expected=4)
    failed = [r for r in runs if r.state and r.state.is_failed()]
    assert len(failed) == 1 and "exceeded timeout" in (failed[0].state.message or "")
    assert out.usage["total_tokens"] == llm_simulator.stats.billed_tokens(path=CHAT)
    assert out.metadata["unaccounted_calls"] == 1


async def test_usage_counts_every_billed_answer(llm_simulator, fresh_breakers):
    """content_filter replies are billed although they never become valid replicates."""
    llm_simulator.reset()
    tool = llm_tool(llm_simulator, "gpt-4o-mini+content_filter")
    out = await orchestrator(tool).run("q", tool.name, k3())
    assert out.status == "failed"
    assert {e["category"] for e in out.errors.values() if "category" in e} == {
        "content_filter"}
    billed = llm_simulator.stats.billed_tokens(path=CHAT)
    assert billed > 0 and out.usage["total_tokens"] == billed
    assert out.cost_usd > 0 and out.metadata["unaccounted_calls"] == 0


async def test_retried_faults_are_accounted(llm_simulator, fresh_breakers):
    llm_simulator.reset()
    tool = llm_tool(llm_simulator, "gpt-4o-mini+fail=1:503")
    out = await orchestrator(tool, ReliabilityConfig(retry=FAST_RETRIES)).run(
        "q", tool.name, k3())
    assert out.status == "succeeded"
    assert out.usage["total_tokens"] == llm_simulator.stats.billed_tokens(path=CHAT)
    assert out.metadata["provider_calls"] == 6 and out.metadata["unaccounted_calls"] == 0
