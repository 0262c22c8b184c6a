"""The engine end to end on real Prefect flow runs (test harness, temporary SQLite server)."""

from __future__ import annotations

import asyncio
import copy

import pytest

from steer_llm_sdk.config import ReliabilityConfig, RetryPolicy
from steer_llm_sdk.errors import BudgetExceeded, ProviderError
from steer_llm_sdk.orchestration import (
    BundleTool,
    OrchestrationConfig,
    Orchestrator,
    ReplicateOutput,
    Tool,
    ToolRegistry,
    Usage,
)
from tests.helpers.prefect_api import read_flow_run, read_task_runs

pytestmark = pytest.mark.usefixtures("prefect_backend")

FAST_RETRIES = ReliabilityConfig(retry=RetryPolicy(max_attempts=3, initial_delay=0.01,
                                                   backoff_factor=1.0, jitter=0.0))

# Replicate data keyed by seed: verdict agrees, score varies, so statistics are checkable.
SCORES = {1: 6.0, 2: 8.0, 3: 7.0, 4: 9.0}


class ScoreTool(BundleTool):
    name = "score"
    version = "2.1.0"

    def __init__(self, fail_once: set[int] | None = None, always_fail: set[int] | None = None,
                 sleep_s: float = 0.0, tokens: int = 100):
        self.fail_once = set(fail_once or ())
        self.always_fail = set(always_fail or ())
        self.sleep_s = sleep_s
        self.tokens = tokens
        self.calls: list[tuple[int, int]] = []

    async def run_replicate(self, request, seed, context):
        self.calls.append((seed, context.attempt))
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        if seed in self.always_fail:
            raise ProviderError("upstream 503", category="server_error")
        if seed in self.fail_once and context.attempt == 1:
            raise ProviderError("flaky 500", category="server_error")
        return ReplicateOutput(
            data={"verdict": "go", "score": SCORES.get(seed, 5.0)},
            usage=Usage(prompt_tokens=self.tokens - 20, completion_tokens=20,
                        total_tokens=self.tokens),
            cost_usd=0.001, model="sim-model",
        )


def make(tool: Tool) -> Orchestrator:
    registry = ToolRegistry()
    registry.register_tool(tool)
    return Orchestrator(registry, reliability_config=FAST_RETRIES)


async def test_bundle_run_is_a_prefect_flow_run_with_k_task_runs():
    tool = ScoreTool()
    events = []
    request = {"query": "Is the plan feasible?", "context": {"team": 3}}
    options = {"k": 4, "early_stop": False}
    cfg = OrchestrationConfig(trace_id="trace-abc123", metadata={"team": "risk"})
    before = (copy.deepcopy(request), copy.deepcopy(options), cfg.model_dump())

    out = await make(tool).run(request, "score", options, cfg, on_event=events.append)

    assert (request, options, cfg.model_dump()) == before  # nothing of the caller's mutated
    assert out.status == "succeeded" and out.errors is None
    bundle = out.evidence_bundle
    assert bundle.meta.k == 4 and bundle.meta.k_completed == 4
    assert bundle.meta.seeds == [1, 2, 3, 4]
    assert [r.id for r in bundle.replicates] == ["r1", "r2", "r3", "r4"]
    # verdict agrees everywhere; scores 6,8,7,9: spread 3 > 0.2*9 so "score" disagrees
    assert bundle.summary.consensus == {"verdict": "go"}
    assert [d.field for d in bundle.summary.disagreements] == ["score"]
    dist = bundle.summary.distributions["score"]
    assert dist["mean"] == pytest.approx(7.5)  # (6+8+7+9)/4
    assert dist["std"] == pytest.approx(1.2909944487)  # sqrt(5/3)
    assert out.usage == {"prompt_tokens": 320, "completion_tokens": 80, "total_tokens": 400}
    assert out.cost_usd == pytest.approx(0.004)
    assert out.cost_breakdown == {"r1": 0.001, "r2": 0.001, "r3": 0.001, "r4": 0.001}
    assert out.metadata["tool_name"] == "score" and out.metadata["tool_version"] == "2.1.0"
    assert out.metadata["trace_id"] == "trace-abc123" and out.metadata["request_id"]
    assert out.metadata["team"] == "risk"

    flow_run = await read_flow_run(out.metadata["flow_run_id"])
    assert flow_run.name == "score-trace-abc123"
    assert {"score", "tool:score", "trace:trace-abc123", "team:risk"} <= set(flow_run.tags)
    assert flow_run.state.is_completed()
    task_runs = await read_task_runs(out.metadata["flow_run_id"], expected=5)
    assert sorted(r.name for r in task_runs) == [  # exactly the names the docs give
        "compute-statistics", "replicate-r1", "replicate-r2", "replicate-r3", "replicate-r4"]

    types = [e.type for e in events]
    assert types[:2] == ["orchestration_started", "tool_started"]
    assert types[-2:] == ["bundle_ready", "orchestration_completed"]
    assert types.count("replicate_started") == 4 and types.count("replicate_done") == 4
    # partial_summary comes right after the second replicate finished, not at the end
    second_done = [i for i, t in enumerate(types) if t == "replicate_done"][1]
    assert types[second_done + 1] == "partial_summary"
    assert all(e.trace_id == "trace-abc123" and e.tool_name == "score" for e in events)
    assert {e.replicate_id for e in events if e.type == "replicate_done"} == {"r1", "r2", "r3",
                                                                             "r4"}


async def test_replicate_failing_once_is_retried_by_prefect():
    tool = ScoreTool(fail_once={2})
    out = await make(tool).run("q", "score", {"k": 3, "early_stop": False})
    assert out.status == "succeeded"
    assert sorted(tool.calls) == [(1, 1), (2, 1), (2, 2), (3, 1)]
    task_runs = await read_task_runs(out.metadata["flow_run_id"], expected=4)
    r2 = next(r for r in task_runs if r.name == "replicate-r2")
    assert r2.run_count == 2 and r2.state.is_completed()


async def test_early_stop_when_first_two_agree():
    class Agreeing(ScoreTool):
        async def run_replicate(self, request, seed, context):
            self.calls.append((seed, context.attempt))
            return {"verdict": "go", "score": 7.0}

    tool = Agreeing()
    events = []
    out = await make(tool).run("q", "score", {"k": 5, "epsilon": 0.1}, on_event=events.append)
    bundle = out.evidence_bundle
    assert len(tool.calls) == 2
    assert bundle.meta.early_stopped is True and bundle.meta.k_completed == 2
    assert "distance 0.0000 <= epsilon 0.1" in bundle.meta.early_stop_reason
    assert "early_stop" in [e.type for e in events]
    assert bundle.summary.consensus == {"score": 7.0, "verdict": "go"}


async def test_no_early_stop_when_first_two_disagree():
    tool = ScoreTool()  # scores 6 vs 8: distance (0 + 2/8)/2 = 0.125 > epsilon 0.1
    out = await make(tool).run("q", "score", {"k": 4, "epsilon": 0.1})
    assert out.evidence_bundle.meta.early_stopped is False
    assert len(tool.calls) == 4


async def test_partial_when_some_replicates_fail():
    tool = ScoreTool(always_fail={3})
    events = []
    out = await make(tool).run("q", "score", {"k": 3, "early_stop": False},
                               on_event=events.append)
    assert out.status == "partial"
    assert set(out.errors) == {"score.r3"}
    assert out.errors["score.r3"]["is_retryable"] is True
    assert [c for c in tool.calls if c[0] == 3] == [(3, 1), (3, 2), (3, 3)]  # 3 attempts
    r3 = out.evidence_bundle.replicates[2]
    assert r3.quality.valid is False and "upstream 503" in r3.quality.errors[0]
    # a failed replicate never counts as identical to another: matrix covers valid ones only
    assert len(out.evidence_bundle.summary.pairwise_distance) == 2
    assert "replicate_failed" in [e.type for e in events]


async def test_bundle_with_fewer_than_two_valid_replicates_fails():
    tool = ScoreTool(always_fail={2, 3})
    out = await make(tool).run("q", "score", {"k": 3, "early_stop": False},
                               OrchestrationConfig(max_retries=0))
    assert out.status == "failed"
    assert out.content["error"]["code"] == "bundle_failed"
    assert out.content["bundle"]["meta"]["k_completed"] == 3  # no data lost
    flow_run = await read_flow_run(out.metadata["flow_run_id"])
    assert flow_run.state.is_failed()


async def test_budget_exceeded_stops_launching_replicates():
    tool = ScoreTool(tokens=100)
    cfg = OrchestrationConfig(budget={"tokens": 150}, max_parallel=1)
    with pytest.raises(BudgetExceeded) as info:
        await make(tool).run("q", "score", {"k": 5, "early_stop": False}, cfg)
    err = info.value
    assert (err.budget_type, err.limit, err.actual) == ("tokens", 150, 200)
    assert len(tool.calls) == 2  # the third replicate never started


async def test_timeout_raises_budget_exceeded_time():
    tool = ScoreTool(sleep_s=5.0)
    events = []
    with pytest.raises(BudgetExceeded) as info:
        await make(tool).run("q", "score", {"k": 2}, OrchestrationConfig(timeout_ms=300),
                             on_event=events.append)
    assert info.value.budget_type == "time" and info.value.limit == 300
    assert 300 <= info.value.actual < 5000
    assert "timeout" in [e.type for e in events]


class Exploding(Tool):
    name = "exploding"

    async def execute(self, request, options, event_sink=None):
        raise ValueError("the model refused: bad input field 'query'")


class Plain(Tool):
    name = "plain"
    description = "one answer"

    async def execute(self, request, options, event_sink=None):
        return {"answer": request["query"].upper()}


async def test_plain_tool_runs_as_one_task():
    out = await make(Plain()).run("hello", "plain")
    assert out.status == "succeeded" and out.content == {"answer": "HELLO"}
    runs = await read_task_runs(out.metadata["flow_run_id"], expected=1)
    assert [r.name for r in runs] == ["tool-plain"]


async def test_failed_tool_returns_failed_output():
    out = await make(Exploding()).run("x", "exploding", options=OrchestrationConfig())
    assert out.status == "failed"
    assert out.content["error"]["type"] == "ValueError"
    err = out.errors["exploding"]
    assert err["message"] == "the model refused: bad input field 'query'"
    assert err["is_retryable"] is False and err["code"]


async def test_unknown_tool_names_available_ones():
    with pytest.raises(ValueError, match=r"unknown tool .nope.; available tools: .*plain"):
        await make(Plain()).run("x", "nope")


def test_run_sync_from_plain_code():
    out = make(Plain()).run_sync("sync", "plain")
    assert out.content == {"answer": "SYNC"}


async def test_run_sync_inside_a_running_loop():
    out = await asyncio.to_thread(lambda: make(Plain()).run_sync("loop", "plain"))
    assert out.content == {"answer": "LOOP"}
    out = make(Plain()).run_sync("inner", "plain")  # called on the loop thread itself
    assert out.content == {"answer": "INNER"}
