"""0.3.2 tools and orchestrator calls, unchanged apart from the release notes' renames, on real
Prefect runs (the session harness) and, for provider calls, the simulator over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from steer_llm_sdk.errors import ConflictError, ProviderError
from steer_llm_sdk.orchestration import (
    BundleMetadata,
    BundleSummary,
    CircuitBreakerConfig,
    EvidenceBundle,
    OrchestrationConfig,
    Orchestrator,
    ReliabilityConfig,
    Replicate,
    ReplicateQuality,
    RetryPolicy,
    Tool,
    get_global_registry,
)
from steer_llm_sdk.orchestration.planning import RuleBasedPlanner
from steer_llm_sdk.orchestration.planning.rule_based import (
    create_budget_aware_rule,
    create_type_based_rule,
)
from steer_llm_sdk.orchestration.reliable_orchestrator import ReliableOrchestrator
from steer_llm_sdk.providers import OpenAIProvider
from steer_llm_sdk.reliability.idempotency_sqlite import SQLiteIdempotencyStore
from steer_tools.base import ToolContext

pytestmark = pytest.mark.usefixtures("prefect_backend")

FAST = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.1, retry_on_rate_limit=True,
                   retry_on_server_error=True, jitter_factor=0.0)


class CountingTool(Tool):
    """Written the 0.3.2 way: name/version properties, execute(request, options=None,
    event_manager=None), state set in __init__ without calling super().__init__()."""

    def __init__(self, name: str, errors: list[BaseException] | None = None):
        self._name = name
        self.errors = list(errors or [])
        self.calls: list[tuple[Any, Any, Any]] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        return "1.0.0"

    async def execute(self, request, options=None, event_manager=None):
        self.calls.append((request, options, event_manager))
        if self.errors:
            raise self.errors.pop(0)
        return {"data": f"Result from {self.name}", "attempt": len(self.calls)}


def retryable(status: int) -> ProviderError:
    error = ProviderError("Network error", provider="mock", status_code=status)
    error.is_retryable = True
    return error


@pytest.fixture
def registry():
    reg = get_global_registry()
    before = set(reg.list_tools())
    yield reg
    for name in set(reg.list_tools()) - before:
        reg.unregister(name)


async def test_0_3_2_tool_runs_unchanged(registry):
    tool = CountingTool("compat_exec")
    registry.register_tool(tool)
    out = await Orchestrator().run(request={"query": "test"}, tool_name="compat_exec",
                                   tool_options={"k": 3})
    assert out.status == "succeeded" and out.content == {"data": "Result from compat_exec",
                                                         "attempt": 1}
    request, options, event_manager = tool.calls[0]
    assert request == {"query": "test"} and options["k"] == 3 and event_manager is not None


class BundleReturningTool(Tool):
    name = "compat_bundle"

    async def execute(self, request, options=None, event_manager=None):
        replicates = [Replicate(id=f"r{i}", data={"result": i}, usage={"total_tokens": t},
                                quality=ReplicateQuality(valid=True))
                      for i, t in ((1, 100), (2, 150))]
        return EvidenceBundle(meta=BundleMetadata(task="test", k=2, model="m", seeds=[11, 23]),
                              replicates=replicates,
                              summary=BundleSummary(confidence=0.85, disagreements=[]),
                              usage_total={"total_tokens": 250}, cost_total_usd=0.001)


async def test_plain_tool_returning_a_0_3_2_bundle(registry):
    registry.register_tool(BundleReturningTool())
    out = await Orchestrator().run(request="analyze this", tool_name="compat_bundle")
    assert out.status == "succeeded"
    assert out.usage["total_tokens"] == 250 and out.cost_usd == 0.001
    assert out.metadata["confidence"] == 0.85 and out.metadata["replicate_count"] == 2
    assert out.metadata["bundle_meta"]["k_completed"] == 2
    assert out.evidence_bundle.meta.seeds == [11, 23]


async def test_reliable_orchestrator_positional_signature_retries_503(registry, tmp_path):
    tool = CountingTool("compat_retry", [retryable(503), retryable(504)])
    registry.register_tool(tool)
    store = SQLiteIdempotencyStore(tmp_path / "idem.sqlite3")
    orch = ReliableOrchestrator(None, ReliabilityConfig(retry_policy=FAST), store)
    out = await orch.run(request="test", tool_name="compat_retry")
    assert out.status == "succeeded" and len(tool.calls) == 3
    assert out.content["attempt"] == 3
    keyed = ReliableOrchestrator(idempotency_manager=store)
    cfg = OrchestrationConfig(idempotency_key="compat-key-1")
    first = await keyed.run(request="test", tool_name="compat_retry", options=cfg)
    second = await keyed.run(request="test", tool_name="compat_retry", options=cfg)
    assert len(tool.calls) == 4 and second.content == first.content
    assert second.metadata.get("idempotent_replay") is True
    with pytest.raises(ConflictError, match="used with different request"):
        await keyed.run(request="other", tool_name="compat_retry", options=cfg)
    with pytest.raises(TypeError, match="not both"):
        ReliableOrchestrator(idempotency_store=store, idempotency_manager=store)


async def test_non_retryable_400_runs_once(registry):
    bad = ProviderError("Validation error", provider="mock", status_code=400)
    bad.is_retryable = False
    tool = CountingTool("compat_400", [bad])
    registry.register_tool(tool)
    out = await ReliableOrchestrator(reliability_config=ReliabilityConfig(
        retry_policy=FAST)).run(request="test", tool_name="compat_400")
    assert out.status == "failed" and len(tool.calls) == 1


async def test_unknown_retryable_error_is_retried_and_falls_back(registry):
    """docs/providers.md: `unknown` is retried and falls back only when marked retryable."""
    odd = CountingTool("compat_odd", [ProviderError("odd", is_retryable=True)] * 3)
    plain = CountingTool("compat_plain", [ProviderError("odd")])
    backup = CountingTool("compat_backup")
    for tool in (odd, plain, backup):
        registry.register_tool(tool)
    orch = ReliableOrchestrator(reliability_config=ReliabilityConfig(retry_policy=FAST))
    cfg = OrchestrationConfig(fallback_tools=["compat_backup"])
    out = await orch.run("q", "compat_odd", options=cfg)
    assert len(odd.calls) == 3 and out.metadata["answered_by"] == "compat_backup"
    out = await orch.run("q", "compat_plain", options=cfg)
    assert len(plain.calls) == 1 and out.status == "failed"
    assert len(backup.calls) == 1  # only the first run fell back


async def test_reliability_config_enable_fallback_false(registry):
    tool = CountingTool("compat_nofb", [retryable(503)])
    backup = CountingTool("compat_nofb_backup")
    registry.register_tool(tool)
    registry.register_tool(backup)
    config = ReliabilityConfig(retry_policy=RetryPolicy(max_attempts=1), enable_fallback=False)
    out = await ReliableOrchestrator(reliability_config=config).run(
        "q", "compat_nofb", options=OrchestrationConfig(fallback_tools=["compat_nofb_backup"]))
    assert out.status == "failed" and len(tool.calls) == 1 and backup.calls == []


class ProviderTool(Tool):
    """A plain tool calling a provider with no breaker config of its own."""

    name = "compat_provider"

    def __init__(self, provider: OpenAIProvider):
        self.llm = provider
        self.contexts: list[ToolContext] = []

    async def execute(self, request, options=None, event_manager=None, context=None):
        self.contexts.append(context)
        done = await self.llm.complete([{"role": "user", "content": request["query"]}],
                                       "gpt-4o-mini+status=503")
        return {"text": done.text}


async def test_reliability_breaker_threshold_reaches_a_plain_tools_provider(
        registry, llm_simulator, fresh_breakers):
    llm_simulator.reset()
    base_url = llm_simulator.base_url.replace("127.0.0.1", "localhost")
    tool = ProviderTool(OpenAIProvider(api_key="sk-test", base_url=base_url))
    registry.register_tool(tool)
    config = ReliabilityConfig(retry_policy=FAST, circuit_breaker_configs={
        "default": CircuitBreakerConfig(failure_threshold=2, timeout=60)})
    out = await ReliableOrchestrator(reliability_config=config).run(
        "q", "compat_provider", options=OrchestrationConfig(trace_id="compat-trace"))
    assert out.status == "failed"
    # threshold 2 from ReliabilityConfig: the third attempt meets an open breaker and never
    # reaches the provider (the default threshold, 5, would have let all three through)
    assert len(llm_simulator.requests_for(model="gpt-4o-mini")) == 2
    assert fresh_breakers.states()[tool.llm.breaker_name] == "open"
    assert [c.attempt for c in tool.contexts] == [1, 2, 3]
    assert tool.contexts[0].breaker_config.failure_threshold == 2
    assert tool.contexts[0].trace_id == "compat-trace"


class OptionsTool(CountingTool):
    default_options = {"depth": 2, "k": 9}


async def test_planner_merges_tool_default_options_and_reads_the_run_budget(registry):
    tool = OptionsTool("compat_defaults")
    registry.register_tool(tool)
    registry.register_tool(CountingTool("compat_other"))
    planner = RuleBasedPlanner([create_type_based_rule("analysis", "compat_defaults",
                                                       priority=10, style="brief")])
    out = await ReliableOrchestrator(planner).run({"type": "analysis"})
    assert out.status == "succeeded"
    assert {k: tool.calls[-1][1][k] for k in ("depth", "k", "style")} == {
        "depth": 2, "k": 9, "style": "brief"}
    budget_planner = RuleBasedPlanner([create_budget_aware_rule("compat_defaults")])
    low = OrchestrationConfig(budget={"tokens": 1000})
    await ReliableOrchestrator(budget_planner).run({"query": "x"}, options=low)
    assert tool.calls[-1][1]["k"] == 2  # the run's budget reached the 0.3.2 rule
