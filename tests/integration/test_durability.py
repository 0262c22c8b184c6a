"""Durable runs: a crash costs nothing that had finished, and waiters share one execution.

Real parts: a subprocess killed with SIGKILL mid-run, the shared Prefect test server, the
simulator counting requests per seed, the SQLite idempotency store on disk."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.settings import PREFECT_API_URL, get_current_settings

from steer_llm_sdk.config import ReliabilityConfig
from steer_llm_sdk.orchestration import OrchestrationConfig, Orchestrator, ToolRegistry
from steer_llm_sdk.providers import OpenAIProvider
from steer_llm_sdk.reliability.idempotency_sqlite import SQLiteIdempotencyStore
from steer_tools.llm_bundle import LLMBundleTool
from tests.integration.scripts.durable_run import tool as durable_tool

pytestmark = pytest.mark.usefixtures("prefect_backend")
REPO = Path(__file__).resolve().parents[2]


def _seeds(k: int) -> list[int]:
    base = random.randrange(10**6, 10**9)  # unique to this test in the shared simulator
    return [base + i for i in range(k)]


def _idem_tag(key: str) -> str:
    return "idem:" + hashlib.sha256(key.encode()).hexdigest()[:12]


async def _runs_with_tag(tag: str):
    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))


async def test_kill9_mid_run_then_rerun_resumes_finished_replicates(
        llm_simulator, tmp_path: Path) -> None:
    key, seeds, lease = f"crash-{time.time_ns()}", _seeds(5), 2.0
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_API_URL": PREFECT_API_URL.value(),
           "PREFECT_RESULTS_LOCAL_STORAGE_PATH":
               str(get_current_settings().results.local_storage_path)}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests/integration/scripts/durable_run.py"),
         llm_simulator.base_url, key, json.dumps(seeds), str(lease)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def sent(seed: int) -> int:
        return len(llm_simulator.stats.requests_for(seed=seed))

    try:  # max_parallel=1: r3 is sent only after r2's task run finished (and persisted)
        deadline = time.monotonic() + 120
        while sent(seeds[2]) == 0:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the child never reached replicate r3"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # r3 in flight
    finally:
        proc.kill()
        proc.wait(30)
    before = {s: sent(s) for s in seeds}
    assert before[seeds[0]] == 1 and before[seeds[1]] == 1 and before[seeds[3]] == 0

    registry = ToolRegistry()
    registry.register_tool(durable_tool(llm_simulator.base_url))
    orchestrator = Orchestrator(registry, reliability_config=ReliabilityConfig(
        idempotency_lease_s=lease))
    options = {"k": 5, "seeds": seeds, "early_stop": False}
    out = await orchestrator.run("Will it survive a crash?", "durable", options,
                                 OrchestrationConfig(idempotency_key=key, max_parallel=1))

    after = {s: sent(s) - before[s] for s in seeds}
    assert after[seeds[0]] == 0 and after[seeds[1]] == 0  # finished seeds: nothing re-spent
    assert after[seeds[2]] == 1 and after[seeds[3]] == 1 and after[seeds[4]] == 1
    assert out.status == "succeeded" and out.evidence_bundle.meta.k_completed == 5
    assert out.metadata["resumed_replicates"] == ["r1", "r2"]

    runs = {str(r.id): r for r in await _runs_with_tag(_idem_tag(key))}
    assert len(runs) == 2
    rerun = runs.pop(out.metadata["flow_run_id"])
    (orphan,) = runs.values()
    assert rerun.state.type.value == "COMPLETED"
    assert orphan.state.type.value == "CRASHED", orphan.state  # the killed process's run
    assert "stopped renewing idempotency key" in (orphan.state.message or "")


async def test_eight_callers_of_a_failing_request_share_one_execution(
        llm_simulator, tmp_path: Path) -> None:
    """Issue 10 item 9: 8 owners-to-be (one store object each, like 8 processes), a request
    the provider rejects with 401 -> one execution; every caller gets its classified error."""
    seeds = _seeds(2)
    db = tmp_path / "idem.sqlite3"
    registry = ToolRegistry()
    registry.register_tool(LLMBundleTool(
        name="denied", model="openai:gpt-4o-mini+latency=0.3+status=401", system="Answer.",
        user_template="{query}",
        provider=OpenAIProvider(api_key="sk-test", base_url=llm_simulator.base_url)))
    stores = [SQLiteIdempotencyStore(db) for _ in range(8)]
    cfg = OrchestrationConfig(idempotency_key=f"denied-{time.time_ns()}",
                              enable_fallback=False)
    options = {"k": 2, "seeds": seeds, "early_stop": False}
    outs = await asyncio.gather(*(
        Orchestrator(registry, idempotency_store=s).run("q", "denied", options, cfg)
        for s in stores))
    requests = sum(len(llm_simulator.stats.requests_for(seed=s)) for s in seeds)
    assert requests <= 2 * 2  # at most two executions of k=2 (was 8 executions, 16 requests)
    assert all(o.status == "failed" for o in outs)
    categories = {e.get("category") for o in outs for e in o.errors.values()}
    assert categories == {"authentication"}, [o.errors for o in outs]
    assert sum(bool(o.metadata.get("shared_failure")) for o in outs) >= 6
    for s in stores:
        s.close()


async def test_a_deployed_style_run_enforces_the_key_inside_the_flow(
        llm_simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow called with JSON parameters only, as a deployment/REST run is: the key is
    claimed inside the flow. Same key + other request -> ConflictError before any provider
    call; same key + same request -> the earlier output, 0 provider calls."""
    from steer_llm_sdk.flows.orchestrate import orchestrate

    from steer_llm_sdk.errors import ConflictError
    from steer_llm_sdk.output import OrchestrationOutput

    monkeypatch.setenv("OPENAI_BASE_URL", llm_simulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sim")
    seeds = _seeds(2)
    options = {"k": 2, "seeds": seeds, "early_stop": False}
    config = OrchestrationConfig(idempotency_key=f"rest-{time.time_ns()}").to_parameters()

    def sent() -> int:
        return sum(len(llm_simulator.stats.requests_for(seed=s)) for s in seeds)

    first = OrchestrationOutput.model_validate_json(await orchestrate(
        request={"query": "Ship v2 in a week"}, tool="feasibility", tool_options=options,
        config=config))
    assert first.status == "succeeded" and sent() == 2
    with pytest.raises(ConflictError, match="already used with different request data"):
        await orchestrate(request={"query": "A totally different question"},
                          tool="feasibility", tool_options=options, config=config)
    assert sent() == 2  # refused before any provider call
    again = OrchestrationOutput.model_validate_json(await orchestrate(
        request={"query": "Ship v2 in a week"}, tool="feasibility", tool_options=options,
        config=config))
    assert sent() == 2 and again.metadata["idempotent_replay"] is True
    assert again.content == first.content
    assert again.metadata["flow_run_id"] == first.metadata["flow_run_id"]
