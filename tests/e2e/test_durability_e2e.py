"""Durability and one idempotency for every entry point, against the real served stack:
a Prefect retry of a failed deployed run re-spends no finished replicate; triggers and REST
runs follow the in-process idempotency rules."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SLOW_TOOL = "tests.e2e.durable_tools:slow_feasibility"


def _seeds(k: int) -> list[int]:
    base = random.randrange(10**6, 10**9)
    return [base + i for i in range(k)]


def test_prefect_retry_of_a_failed_run_skips_finished_replicates(stack, served, simulator):
    seeds = _seeds(3)
    run = stack.create_run("feasibility-interval", {
        "request": {"query": "Resume me after a failure"}, "tool": SLOW_TOOL,
        "tool_options": {"k": 3, "seeds": seeds, "early_stop": False},
        # 2 s per call, one at a time: the 5 s budget stops the run while r3 is in flight
        "config": {"timeout_ms": 5000, "max_parallel": 1},
    })
    first = stack.wait_final(run["id"], timeout_s=120)
    assert first["state"]["type"] == "FAILED", first["state"]
    assert "timeout_ms" in first["state"]["message"]
    finished = [s for s in seeds
                if simulator.stats.requests_for(seed=s, outcome="ok")]
    assert finished, "no replicate finished before the time budget ran out"
    sent_before = {s: len(simulator.stats.requests_for(seed=s)) for s in seeds}

    with stack.http() as http:  # what the UI's "Retry" does
        response = http.post(f"/flow_runs/{run['id']}/set_state", json={"state": {
            "type": "SCHEDULED", "name": "AwaitingRetry", "message": "Retry from the test",
            "state_details": {"scheduled_time": datetime.now(UTC).isoformat()}},
            "force": True})
        assert response.status_code in (200, 201), response.text
    stack.wait_for(lambda: stack.http().get(f"/flow_runs/{run['id']}").json()["run_count"] > 1,
                   60, "the retry to start")
    retried = stack.wait_final(run["id"], timeout_s=120)
    assert retried["state"]["type"] == "COMPLETED", (
        retried["state"].get("message"),
        {s: [r.outcome for r in simulator.stats.requests_for(seed=s)] for s in seeds})
    for seed in finished:  # finished replicates: no new provider request on the retry
        assert len(simulator.stats.requests_for(seed=seed)) == sent_before[seed] == 1
    unfinished = [s for s in seeds if s not in finished]
    assert all(len(simulator.stats.requests_for(seed=s, outcome="ok")) == 1
               for s in unfinished)
    stack.timings["retry_resumed_replicates"] = len(finished)


def _trigger(stack, request: str, key: str, *extra: str):
    return stack.steer("trigger", "feasibility-daily", json.dumps({"query": request}),
                       "--k", "2", "--wait", "--timeout", "120", "--idempotency-key", key,
                       "--json", *extra)


def test_trigger_same_key_other_request_conflicts_same_request_replays(
        stack, served, simulator):
    key = f"e2e-conflict-{time.time_ns()}"
    first = _trigger(stack, "Ship v2 in a week", key)
    assert first.returncode == 0, first.stderr + first.stdout
    first_run = json.loads(first.stdout)
    assert first_run["output"]["status"] == "succeeded"

    sent = simulator.stats.total_requests
    other = _trigger(stack, "A totally different question", key)
    assert other.returncode == 2, other.stdout
    assert other.stderr.startswith("error: idempotency key") and other.stderr.count("\n") == 1
    assert "already used with different request data" in other.stderr

    script = (  # client.trigger raises the same error
        "import sys\nfrom steer_llm_sdk import SteerLLMClient\n"
        "from steer_llm_sdk.errors import ConflictError\n"
        "try:\n    SteerLLMClient().trigger('feasibility-daily', 'A totally different question',"
        f" tool_options={{'k': 2}}, idempotency_key={key!r}, wait=True)\n"
        "except ConflictError as exc:\n    print('conflict', exc.key); sys.exit(0)\n"
        "sys.exit(1)\n")
    raised = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**stack.env, "PREFECT_HOME": str(stack.root / "client-home")},
                            timeout=120)
    assert raised.returncode == 0, raised.stderr + raised.stdout
    assert raised.stdout.startswith("conflict")

    again = _trigger(stack, "Ship v2 in a week", key)
    assert again.returncode == 0, again.stderr
    replay = json.loads(again.stdout)
    assert replay["flow_run_id"] == first_run["flow_run_id"]
    assert replay["output"]["content"] == first_run["output"]["content"]
    assert simulator.stats.total_requests == sent  # no provider call for any of the three


def test_rest_run_with_a_reused_key_fails_at_once_with_the_conflict(stack, served, simulator):
    key = f"e2e-rest-{time.time_ns()}"
    params = {"tool_options": {"k": 2}, "config": {"idempotency_key": key}}
    ok = stack.wait_final(stack.create_run("feasibility-interval", {
        **params, "request": {"query": "First question"}})["id"])
    assert ok["state"]["type"] == "COMPLETED", ok["state"]
    sent = simulator.stats.total_requests
    clash = stack.wait_final(stack.create_run("feasibility-interval", {
        **params, "request": {"query": "Second question"}})["id"])
    assert clash["state"]["type"] == "FAILED"
    assert "ConflictError" in clash["state"]["message"]
    assert "already used with different request data" in clash["state"]["message"]
    replay = stack.wait_final(stack.create_run("feasibility-interval", {
        **params, "request": {"query": "First question"}})["id"])
    assert replay["state"]["type"] == "COMPLETED"
    assert simulator.stats.total_requests == sent  # neither run called the provider
