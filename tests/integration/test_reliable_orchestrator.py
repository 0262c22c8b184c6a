"""ReliableOrchestrator on real Prefect runs against the simulator: planning, fallback,
breakers, persistent idempotency (threads, processes, TTL) and trace propagation."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL
from steer_llm_sdk.planner import RuleBasedPlanner, budget_aware_rule, keyword_rule

from steer_llm_sdk.config import CircuitBreakerConfig, ReliabilityConfig, RetryPolicy
from steer_llm_sdk.errors import ConflictError
from steer_llm_sdk.orchestration import OrchestrationConfig, ReliableOrchestrator, ToolRegistry
from steer_llm_sdk.providers import OpenAIProvider
from steer_llm_sdk.reliability.idempotency_sqlite import SQLiteIdempotencyStore
from steer_tools.llm_bundle import LLMBundleTool
from tests.helpers.prefect_api import read_task_runs

pytestmark = pytest.mark.usefixtures("prefect_backend")

FAST = RetryPolicy(max_attempts=2, initial_delay=0.01, jitter=0.0)
SCRIPT = Path(__file__).parent / "scripts" / "idempotent_run.py"


def llm_tool(sim, name: str, model: str = "gpt-4o-mini", base_url: str | None = None):
    return LLMBundleTool(name=name, model=f"openai:{model}", system="Answer briefly.",
                         user_template="{query}",
                         provider=OpenAIProvider(api_key="sk-test",
                                                 base_url=base_url or sim.base_url))


def orchestrator(*tools, planner=None, store=None, **reliability):
    registry = ToolRegistry()
    for tool in tools:
        registry.register_tool(tool)
    config = ReliabilityConfig(retry=FAST, **reliability)
    return ReliableOrchestrator(planner=planner, reliability_config=config,
                                idempotency_store=store, registry=registry)


@pytest.fixture
def sim(llm_simulator, fresh_breakers):
    llm_simulator.reset()
    return llm_simulator


async def test_planner_chooses_by_keyword_and_records_its_decision(sim):
    planner = RuleBasedPlanner([keyword_rule(["risk", "risks"], "risk-tool")],
                               default_tool="general")
    orch = orchestrator(llm_tool(sim, "risk-tool"), llm_tool(sim, "general"), planner=planner)
    out = await orch.run("what are the risks of a rewrite?", tool_options={"k": 2})
    assert out.metadata["tool_name"] == "risk-tool"
    assert out.metadata["plan"]["selected_tool"] == "risk-tool"
    assert out.metadata["plan"]["confidence"] == 1.0
    runs = await read_task_runs(out.metadata["flow_run_id"], expected=4)
    assert sorted(r.name for r in runs) == [  # exactly the names the docs give
        "compute-statistics", "plan", "replicate-r1", "replicate-r2"]
    async with get_client() as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[out.metadata["flow_run_id"]])))
    keys = {a.key for a in artifacts}
    assert {"plan-decision", "evidence-summary", "evidence-fields"} <= keys

    out = await orch.run("summarise the quarter", tool_options={"k": 2})
    assert out.metadata["tool_name"] == "general"
    assert "no rule matched" in out.metadata["plan"]["reasoning"]


async def test_budget_aware_rule_lowers_k(sim):
    planner = RuleBasedPlanner([budget_aware_rule("bundle", cost_per_replicate_usd=0.02,
                                                  max_k=8)])
    orch = orchestrator(llm_tool(sim, "bundle"), planner=planner)
    out = await orch.run("q", tool_options={"k": 6, "early_stop": False},
                         options=OrchestrationConfig(budget={"cost_usd": 0.05}))
    assert out.evidence_bundle.meta.k == 2  # 0.05 / 0.02 -> 2 replicates fit
    out = await orch.run("q", tool_options={"k": 3, "early_stop": False},
                         options=OrchestrationConfig(budget={"cost_usd": 1.0}))
    assert out.evidence_bundle.meta.k == 3  # the caller's k already fits


async def test_named_tool_falls_back_after_retryable_failure(sim):
    broken = llm_tool(sim, "primary", model="gpt-4o-mini+status=503")
    backup = llm_tool(sim, "backup", model="gpt-4o")
    orch = orchestrator(broken, backup)
    events = []
    out = await orch.run("q", "primary", {"k": 2, "early_stop": False},
                         OrchestrationConfig(fallback_tools=["backup"]), on_event=events.append)
    assert out.status == "succeeded" and out.metadata["answered_by"] == "backup"
    attempts = out.metadata["attempts"]
    assert [(a["tool"], a["status"]) for a in attempts] == [("primary", "failed"),
                                                             ("backup", "succeeded")]
    assert attempts[0]["error"]["category"] == "server_error"
    assert len(sim.requests_for(model="gpt-4o-mini")) == 4  # 2 replicates x 2 attempts
    assert "fallback" in [e.type for e in events]


async def test_fallbacks_given_in_tool_options_and_the_chain_of_errors(sim):
    a = llm_tool(sim, "a", model="gpt-4o-mini+status=500")
    b = llm_tool(sim, "b", model="gpt-4o+status=502")
    out = await orchestrator(a, b).run("q", "a", {"k": 2, "fallback_tools": ["b"]})
    assert out.status == "failed"
    assert set(out.errors) >= {"a", "b", "fallback"}
    assert "every tool failed (2 attempts)" in out.errors["fallback"]["message"]


async def test_non_retryable_failure_does_not_fall_back(sim):
    a = llm_tool(sim, "a", model="gpt-4o-mini+status=401")
    b = llm_tool(sim, "b")
    out = await orchestrator(a, b).run("q", "a", {"k": 2},
                                       OrchestrationConfig(fallback_tools=["b"]))
    assert out.status == "failed"
    assert [x["tool"] for x in out.metadata["attempts"]] == ["a"]
    assert sim.requests_for(model="gpt-4o-mini") and not sim.requests_for(model="gpt-4o")


async def test_open_breaker_skips_the_provider_without_calling_it(sim):
    broken_url = sim.base_url.replace("127.0.0.1", "localhost")  # a second endpoint/breaker
    a = llm_tool(sim, "a", model="gpt-4o-mini+status=503", base_url=broken_url)
    b = llm_tool(sim, "b", model="gpt-4o")
    # k=2 replicates failing together are one observation (docs/reliability.md): with
    # failure_threshold=1 that one sustained failure opens the breaker
    orch = orchestrator(a, b, default_breaker=CircuitBreakerConfig(failure_threshold=1,
                                                                   reset_timeout_s=60))
    cfg = OrchestrationConfig(fallback_tools=["b"])
    first = await orch.run("q", "a", {"k": 2, "early_stop": False}, cfg)
    assert first.metadata["answered_by"] == "b"
    assert orch.get_breaker_states()[a.provider] == "open"
    calls_to_a = len(sim.requests_for(model="gpt-4o-mini"))
    second = await orch.run("q", "a", {"k": 2, "early_stop": False}, cfg)
    assert second.metadata["answered_by"] == "b"
    assert second.metadata["attempts"][0]["status"] == "skipped"
    assert second.metadata["attempts"][0]["error"]["category"] == "circuit_open"
    assert len(sim.requests_for(model="gpt-4o-mini")) == calls_to_a  # never called

    planner = RuleBasedPlanner([keyword_rule(["q"], "a", fallbacks=["b"])])
    planned = await orchestrator(a, b, planner=planner).run("q", tool_options={"k": 2})
    assert planned.metadata["tool_name"] == "b"  # the planner routed around the open breaker
    assert len(sim.requests_for(model="gpt-4o-mini")) == calls_to_a


async def test_idempotent_replay_and_conflict(sim, tmp_path):
    store = SQLiteIdempotencyStore(tmp_path / "idem.sqlite3")
    orch = orchestrator(llm_tool(sim, "t"), store=store)
    cfg = OrchestrationConfig(idempotency_key="order-42")
    first = await orch.run("same question", "t", {"k": 2}, cfg)
    calls = sim.stats.total_requests
    again = await orch.run("same question", "t", {"k": 2}, cfg)
    assert sim.stats.total_requests == calls
    assert again.metadata["idempotent_replay"] is True
    assert again.content == first.content
    with pytest.raises(ConflictError, match="order-42:t"):
        await orch.run("a different question", "t", {"k": 2}, cfg)


async def test_failed_runs_are_not_stored(sim, tmp_path):
    store = SQLiteIdempotencyStore(tmp_path / "idem.sqlite3")
    orch = orchestrator(llm_tool(sim, "bad", model="gpt-4o-mini+status=400"), store=store)
    cfg = OrchestrationConfig(idempotency_key="k-fail")
    assert (await orch.run("q", "bad", {"k": 2}, cfg)).status == "failed"
    calls = sim.stats.total_requests
    assert (await orch.run("q", "bad", {"k": 2}, cfg)).status == "failed"
    assert sim.stats.total_requests == calls + 2  # ran again


async def test_idempotency_entries_expire(sim, tmp_path):
    store = SQLiteIdempotencyStore(tmp_path / "idem.sqlite3")
    orch = orchestrator(llm_tool(sim, "t"), store=store, idempotency_ttl_s=0.5)
    cfg = OrchestrationConfig(idempotency_key="short-lived")
    await orch.run("q", "t", {"k": 2}, cfg)
    await asyncio.sleep(0.6)
    out = await orch.run("q", "t", {"k": 2}, cfg)
    assert "idempotent_replay" not in out.metadata
    # two executions of k=2 (answered requests: a retry on a loaded machine is not a replay)
    assert len(sim.stats.requests_for(status=200)) == 4


async def test_eight_concurrent_runs_with_one_key_execute_once(sim, tmp_path):
    store = SQLiteIdempotencyStore(tmp_path / "idem.sqlite3")
    orch = orchestrator(llm_tool(sim, "t", model="gpt-4o-mini+latency=0.3"), store=store)
    cfg = OrchestrationConfig(idempotency_key="burst")
    outs = await asyncio.gather(*(orch.run("q", "t", {"k": 2, "early_stop": False}, cfg)
                                  for _ in range(8)))
    assert sim.stats.total_requests == 2  # one execution: k=2 provider calls
    assert len({json.dumps(o.content, sort_keys=True) for o in outs}) == 1
    assert sum(1 for o in outs if o.metadata.get("idempotent_replay")) == 7


def test_idempotent_replay_across_two_processes(sim, tmp_path):
    env = {**os.environ, "STEER_HOME": str(tmp_path / "home"),
           "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": os.getcwd()}
    outputs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, str(SCRIPT), sim.base_url, "cross-proc", "q"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert sim.stats.total_requests == 2  # second process replayed from the SQLite store
    assert outputs[1]["metadata"]["idempotent_replay"] is True
    assert outputs[0]["content"] == outputs[1]["content"]


async def test_generated_trace_ids_reach_the_provider_and_the_output(sim):
    out = await orchestrator(llm_tool(sim, "t")).run("q", "t", {"k": 2, "early_stop": False})
    trace, request = out.metadata["trace_id"], out.metadata["request_id"]
    assert len(trace) == 32 and len(request) == 32
    seen = sim.requests_for(x_trace_id=trace)
    assert len(seen) == 2 and all(r.request_id == request for r in seen)
    started = time.monotonic()
    async with get_client() as client:
        import uuid

        run = await client.read_flow_run(uuid.UUID(out.metadata["flow_run_id"]))
    assert f"trace:{trace}" in run.tags and run.name == f"t-{trace[:12]}"
    assert time.monotonic() - started < 30
