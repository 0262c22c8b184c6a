"""The OpenAI provider over real HTTP against the simulator: classification, breakers,
Retry-After, usage and cost. The real openai client, pybreaker and Prefect retries run."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel, Field

from steer_llm_sdk.config import CircuitBreakerConfig, ReliabilityConfig, RetryPolicy
from steer_llm_sdk.errors import CircuitOpenError, ProviderError, RetryAfterTooLong
from steer_llm_sdk.orchestration import OrchestrationConfig, Orchestrator, ToolRegistry
from steer_llm_sdk.providers import OpenAIProvider
from steer_tools.llm_bundle import LLMBundleTool

MESSAGES = [{"role": "user", "content": "Is a four-person team enough?"}]


class Verdict(BaseModel):
    feasible: bool
    score: int = Field(ge=0, le=10)
    risks: list[str] = Field(min_length=1, max_length=4)


@pytest.fixture
def provider(llm_simulator, fresh_breakers):
    llm_simulator.reset()
    return OpenAIProvider(api_key="sk-test", base_url=llm_simulator.base_url, timeout_s=5)


async def test_success_returns_usage_and_cost(provider, llm_simulator):
    done = await provider.complete(MESSAGES, "gpt-4o-mini", seed=7, temperature=0.5,
                                   trace_id="t-1", request_id="req-1")
    assert done.content and done.model == "gpt-4o-mini"
    usage = done.usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    # gpt-4o-mini: $0.15 / 1M input, $0.60 / 1M output
    expected = (usage["prompt_tokens"] * 0.15 + usage["completion_tokens"] * 0.60) / 1e6
    assert done.cost_usd == pytest.approx(expected)
    [record] = llm_simulator.requests_for(x_request_id="req-1")
    assert record.trace_id == "t-1" and record.seed == 7 and record.authorization_present
    assert "sk-test" not in repr(record) and "sk-test" not in repr(provider)


async def test_structured_output_is_schema_valid(provider):
    fmt = {"type": "json_schema", "json_schema": {"name": "Verdict",
                                                  "schema": Verdict.model_json_schema()}}
    done = await provider.complete(MESSAGES, "gpt-4o-mini", seed=3, response_format=fmt)
    Verdict.model_validate_json(done.content)


@pytest.mark.parametrize(("fault", "category", "retryable"), [
    ("status=429", "rate_limit", True),
    ("status=500", "server_error", True),
    ("status=503", "server_error", True),
    ("status=401", "authentication", False),
    ("status=400", "invalid_request", False),
    ("status=422", "invalid_request", False),
    ("drop", "network", True),
    ("malformed", "server_error", True),
    ("content_filter", "content_filter", False),
])
async def test_each_fault_is_classified(provider, fault, category, retryable):
    with pytest.raises(ProviderError) as info:
        await provider.complete(MESSAGES, f"gpt-4o-mini+{fault}", seed=1)
    assert info.value.category == category
    assert info.value.is_retryable is retryable


async def test_hang_past_timeout_is_a_timeout(llm_simulator, fresh_breakers):
    slow = OpenAIProvider(api_key="sk-test", base_url=llm_simulator.base_url, timeout_s=0.2)
    with pytest.raises(ProviderError) as info:
        await slow.complete(MESSAGES, "gpt-4o-mini+hang=2", seed=1)
    assert info.value.category == "timeout"


async def test_retry_after_longer_than_the_deadline_fails_fast(provider):
    started = time.monotonic()
    with pytest.raises(RetryAfterTooLong, match="retry after 30.0s"):
        await provider.complete(MESSAGES, "gpt-4o-mini+status=429+retry_after=30", seed=1,
                                deadline=time.monotonic() + 2)
    assert time.monotonic() - started < 2


async def test_breaker_opens_fails_fast_and_half_opens(provider, llm_simulator, fresh_breakers):
    cfg = CircuitBreakerConfig(failure_threshold=3, reset_timeout_s=0.3)
    for _ in range(3):
        with pytest.raises(ProviderError):
            await provider.complete(MESSAGES, "gpt-4o-mini+status=503", seed=1,
                                    breaker_config=cfg)
    assert fresh_breakers.states()[provider.breaker_name] == "open"
    calls = llm_simulator.stats.total_requests
    with pytest.raises(CircuitOpenError, match="half-opens in"):
        await provider.complete(MESSAGES, "gpt-4o-mini", seed=1, breaker_config=cfg)
    assert llm_simulator.stats.total_requests == calls  # failed fast: server not called
    time.sleep(0.35)
    done = await provider.complete(MESSAGES, "gpt-4o-mini", seed=1, breaker_config=cfg)
    assert done.content
    assert fresh_breakers.states()[provider.breaker_name] == "closed"
    transitions = fresh_breakers.listener.transitions_for(provider.breaker_name)
    assert [f"{a}->{b}" for a, b in transitions] == ["closed->open", "open->half_open",
                                                      "half_open->closed"]


async def test_client_errors_do_not_trip_the_breaker(provider, fresh_breakers):
    cfg = CircuitBreakerConfig(failure_threshold=2, reset_timeout_s=30)
    for _ in range(4):
        with pytest.raises(ProviderError):
            await provider.complete(MESSAGES, "gpt-4o-mini+status=400", seed=1,
                                    breaker_config=cfg)
    assert fresh_breakers.states()[provider.breaker_name] == "closed"


def _bundle_tool(sim, model="gpt-4o-mini", name="verdict"):
    return LLMBundleTool(
        name=name, model=f"openai:{model}", system="Answer in JSON.",
        user_template="Assess: {query}", output_schema=Verdict,
        provider=OpenAIProvider(api_key="sk-test", base_url=sim.base_url),
    )


def _orchestrator(*tools, retry=None):
    registry = ToolRegistry()
    for tool in tools:
        registry.register_tool(tool)
    policy = retry or RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0.0)
    return Orchestrator(registry, reliability_config=ReliabilityConfig(retry=policy))


@pytest.mark.usefixtures("prefect_backend")
async def test_llm_bundle_through_the_engine_adds_up(llm_simulator, fresh_breakers):
    llm_simulator.reset()
    tool = _bundle_tool(llm_simulator)
    out = await _orchestrator(tool).run(
        "ship the billing rewrite", "verdict", {"k": 4, "early_stop": False},
        OrchestrationConfig(trace_id="trace-llm-1", request_id="req-llm-1"))
    assert out.status == "succeeded"
    bundle = out.evidence_bundle
    assert len(bundle.valid_replicates) == 4
    assert {r.seed for r in llm_simulator.requests_for(x_trace_id="trace-llm-1")} == {1, 2, 3, 4}
    assert all(r.request_id == "req-llm-1" for r in llm_simulator.requests_for(
        x_trace_id="trace-llm-1"))
    assert out.usage["total_tokens"] == sum(r.usage.total_tokens for r in bundle.replicates)
    assert out.cost_usd == pytest.approx(sum(bundle.cost_breakdown.values()))
    assert out.cost_usd > 0 and set(bundle.cost_breakdown) == {"r1", "r2", "r3", "r4"}
    assert set(bundle.summary.distributions) >= {"feasible", "score"}


@pytest.mark.usefixtures("prefect_backend")
async def test_retries_are_counted_at_the_simulator(llm_simulator, fresh_breakers):
    llm_simulator.reset()
    tool = _bundle_tool(llm_simulator, model="gpt-4o-mini+fail=2:503")
    out = await _orchestrator(tool).run("q", "verdict", {"k": 2, "early_stop": False})
    assert out.status == "succeeded"
    for seed in (1, 2):
        statuses = [r.status for r in llm_simulator.requests_for(seed=seed)]
        assert statuses == [503, 503, 200]


@pytest.mark.usefixtures("prefect_backend")
async def test_non_retryable_errors_are_not_retried(llm_simulator, fresh_breakers):
    llm_simulator.reset()
    tool = _bundle_tool(llm_simulator, model="gpt-4o-mini+status=401")
    out = await _orchestrator(tool).run("q", "verdict", {"k": 2, "early_stop": False})
    assert out.status == "failed"
    assert llm_simulator.stats.total_requests == 2  # one attempt per replicate
    assert out.errors["verdict.r1"]["category"] == "authentication"


@pytest.mark.usefixtures("prefect_backend")
async def test_retry_after_is_honoured(llm_simulator, fresh_breakers):
    llm_simulator.reset()
    tool = _bundle_tool(llm_simulator, model="gpt-4o-mini+fail=1:429+retry_after=1")
    out = await _orchestrator(tool).run("q", "verdict", {"k": 2, "early_stop": False})
    assert out.status == "succeeded"
    records = sorted(llm_simulator.requests_for(seed=1), key=lambda r: r.received_at)
    assert [r.status for r in records] == [429, 200]
    waited = records[1].received_at - records[0].received_at
    assert waited >= 1.0  # Retry-After: 1 beat the 0.01 s backoff


@pytest.mark.usefixtures("prefect_backend")
async def test_invalid_json_content_marks_replicate_invalid(llm_simulator, fresh_breakers):
    tool = _bundle_tool(llm_simulator, model="gpt-4o-mini+invalid_json_content")
    out = await _orchestrator(tool).run("q", "verdict", {"k": 2, "early_stop": False})
    assert out.status == "failed"
    rep = out.content["bundle"]["replicates"][0]
    assert rep["quality"]["valid"] is False
    assert "not valid JSON" in rep["quality"]["errors"][0]
