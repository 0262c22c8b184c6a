"""The eager first wave (tasks/eager.py): the replicates that certainly run first are sent while
Prefect creates the flow run, and each is still adopted by its own replicate task run."""

from __future__ import annotations

import asyncio
import time

import pytest
from prefect.context import TaskRunContext

from steer_llm_sdk.config import ReliabilityConfig, RetryPolicy
from steer_llm_sdk.errors import BudgetExceeded, ProviderError
from steer_llm_sdk.orchestration import (
    BundleTool,
    OrchestrationConfig,
    Orchestrator,
    ReplicateOutput,
    ToolRegistry,
)
from tests.helpers.prefect_api import read_flow_run, read_task_runs

pytestmark = pytest.mark.usefixtures("prefect_backend")

RETRY_ONCE = ReliabilityConfig(retry=RetryPolicy(max_attempts=2, initial_delay=0.01,
                                                 backoff_factor=1.0, jitter=0.0))


class WhereTool(BundleTool):
    """Records, per call, the seed, the attempt, whether it ran inside a Prefect task run,
    and when it started."""

    name = "where"
    eager_start = True

    def __init__(self, sleep_s: float = 0.05, fail_first: set[int] | None = None):
        self.sleep_s = sleep_s
        self.fail_first = set(fail_first or ())
        self.calls: list[tuple[int, int, bool]] = []
        self.started_at: dict[int, float] = {}
        self.cancelled: list[int] = []

    async def run_replicate(self, request, seed, context):
        self.calls.append((seed, context.attempt, TaskRunContext.get() is not None))
        self.started_at.setdefault(seed, time.time())
        try:
            await asyncio.sleep(self.sleep_s)
        except asyncio.CancelledError:
            self.cancelled.append(seed)
            raise
        if seed in self.fail_first and context.attempt == 1:
            raise ProviderError("flaky 503", category="server_error")
        return ReplicateOutput(data={"answer": "yes"})


def orchestrator(tool: BundleTool) -> Orchestrator:
    registry = ToolRegistry()
    registry.register_tool(tool)
    return Orchestrator(registry, reliability_config=RETRY_ONCE)


async def test_first_wave_starts_before_the_flow_run_and_is_adopted_once():
    tool = WhereTool(sleep_s=0.3)
    out = await orchestrator(tool).run("q", "where", {"k": 4, "early_stop": False},
                                       OrchestrationConfig(max_parallel=2))
    assert out.status == "succeeded"
    # r1, r2 (max_parallel=2) were sent outside any task run; r3, r4 by their task runs;
    # every seed exactly once
    assert sorted(tool.calls) == [(1, 1, False), (2, 1, False), (3, 1, True), (4, 1, True)]
    flow_run = await read_flow_run(out.metadata["flow_run_id"])
    assert min(tool.started_at[1], tool.started_at[2]) < flow_run.start_time.timestamp()
    task_runs = await read_task_runs(out.metadata["flow_run_id"], expected=5)
    replicates = sorted(r.name for r in task_runs if r.name.startswith("replicate-"))
    assert replicates == ["replicate-r1", "replicate-r2", "replicate-r3", "replicate-r4"]
    assert all(r.state.is_completed() for r in task_runs)
    # elapsed_ms is the call's own duration (0.3 s), not the wait for the task run to adopt it
    for rep in out.evidence_bundle.replicates:
        assert 290 <= rep.elapsed_ms < 1500


async def test_a_failed_eager_attempt_is_retried_by_prefect():
    tool = WhereTool(fail_first={1})
    out = await orchestrator(tool).run("q", "where", {"k": 2}, OrchestrationConfig())
    assert out.status == "succeeded"
    assert sorted(tool.calls) == [(1, 1, False), (1, 2, True), (2, 1, False)]
    task_runs = await read_task_runs(out.metadata["flow_run_id"], expected=3)
    r1 = next(r for r in task_runs if r.name == "replicate-r1")
    assert r1.run_count == 2 and r1.state.is_completed()


async def test_early_stop_sends_only_the_first_two_early():
    tool = WhereTool()
    out = await orchestrator(tool).run("q", "where", {"k": 5, "early_stop": True},
                                       OrchestrationConfig())
    assert out.evidence_bundle.meta.early_stopped  # all replicates agree
    assert sorted(tool.calls) == [(1, 1, False), (2, 1, False)]


async def test_eager_replicates_off_sends_everything_from_task_runs():
    tool = WhereTool()
    out = await orchestrator(tool).run("q", "where", {"k": 3, "early_stop": False},
                                       OrchestrationConfig(eager_replicates=False))
    assert out.status == "succeeded"
    assert sorted(tool.calls) == [(1, 1, True), (2, 1, True), (3, 1, True)]


async def test_a_run_that_times_out_leaves_no_call_running():
    tool = WhereTool(sleep_s=30)
    started = time.monotonic()
    with pytest.raises(BudgetExceeded) as info:
        await orchestrator(tool).run("q", "where", {"k": 2, "early_stop": False},
                                     OrchestrationConfig(timeout_ms=200))
    assert info.value.budget_type == "time"
    assert time.monotonic() - started < 20
    assert sorted(tool.cancelled) == [1, 2]  # adopted or not, both calls were cancelled


async def test_tools_that_did_not_opt_in_run_every_call_in_its_task_run():
    class Plain(WhereTool):
        eager_start = False

    tool = Plain()
    out = await orchestrator(tool).run("q", "where", {"k": 2, "early_stop": False},
                                       OrchestrationConfig())
    assert out.status == "succeeded"
    assert sorted(tool.calls) == [(1, 1, True), (2, 1, True)]
