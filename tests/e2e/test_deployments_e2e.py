"""Deployments against a real `prefect server start`: REST and CLI triggers, persisted results
read by another process, artifacts and tags through the API, server-created schedules."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FLOW = "steer-orchestrate"


def test_deployments_render_their_parameters(stack, served):
    for name in ("feasibility-daily", "feasibility-interval"):
        dep = stack.deployment(name)
        props = dep["parameter_openapi_schema"]["properties"]
        assert {"request", "tool", "tool_options", "config"} <= set(props)
        params = dep["parameters"]
        assert params["tool"] == "feasibility"  # an entry point, loaded by the served process
        assert params["request"]["query"] and params["tool_options"] == {"k": 5}
        assert params["config"]["budget"] == {"cost_usd": 0.5}
        assert dep["entrypoint"] == "steer_llm_sdk.deployments.serve.deployed_orchestrate"
        assert {"steer", "recurring"} <= set(dep["tags"])


def test_rest_run_completes_with_artifacts_and_tags(stack, completed_run):
    run = completed_run
    tags = set(run["tags"])
    assert {"steer", "recurring", "tool:feasibility", "feasibility"} <= tags
    trace_tag = next(t for t in tags if t.startswith("trace:"))
    artifacts = stack.artifacts(run["id"])
    table = artifacts["evidence-fields"]
    assert table["type"] == "table"
    rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
    assert {"feasible", "score"} <= {row["field"] for row in rows}
    summary = artifacts["evidence-summary"]
    assert summary["type"] == "markdown"
    assert "**replicates**: 3 of 3" in summary["data"]
    assert "**confidence**:" in summary["data"]
    assert trace_tag.removeprefix("trace:") in summary["data"]  # the tag is the run's trace


def test_provider_key_never_reaches_the_api(stack, completed_run):
    def run_logs() -> list[dict]:
        with stack.http() as http:
            return http.post("/logs/filter", json={
                "logs": {"flow_run_id": {"any_": [completed_run["id"]]}}, "limit": 200}).json()

    # the run's process ships its logs in batches, and may still be flushing them after the
    # run's final state was written: wait for them rather than race them
    logs = stack.wait_for(run_logs, 30, "the served run's logs")
    with stack.http() as http:
        run = http.get(f"/flow_runs/{completed_run['id']}").json()
    artifacts = stack.artifacts(completed_run["id"])
    blob = json.dumps([logs, run, artifacts])
    assert stack.secret_key not in blob
    assert "OPENAI_API_KEY" not in json.dumps(run["parameters"])


def test_cli_trigger_waits_and_reads_the_persisted_result(stack, served):
    key = f"e2e-{time.time_ns()}"
    started = time.monotonic()
    result = stack.steer("trigger", "feasibility-daily", '{"query": "Ship v2 in a week"}',
                         "--k", "3", "--wait", "--timeout", "120", "--idempotency-key", key,
                         "--json")
    stack.timings["cli_trigger_wait_total"] = time.monotonic() - started
    assert result.returncode == 0, result.stderr + result.stdout
    triggered = json.loads(result.stdout)
    assert triggered["state"] == "COMPLETED"
    output = triggered["output"]  # read from result storage by a process with its own home
    assert output["status"] == "succeeded"
    assert output["metadata"]["flow_run_id"] == triggered["flow_run_id"]
    assert output["metadata"]["trace_id"] == triggered["trace_id"]
    assert output["content"]["meta"]["k"] == 3
    idem = "idem:" + hashlib.sha256(key.encode()).hexdigest()[:12]
    assert {idem, f"trace:{triggered['trace_id']}", "tool:feasibility"} <= set(triggered["tags"])
    assert triggered["ui_url"] == f"{stack.url}/runs/flow-run/{triggered['flow_run_id']}"

    again = stack.steer("trigger", "feasibility-daily", '{"query": "Ship v2 in a week"}',
                        "--k", "3", "--idempotency-key", key, "--json")  # same key, same request
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["flow_run_id"] == triggered["flow_run_id"]

    report = stack.steer("runs", "--deployment", "feasibility-daily", "--json")
    assert report.returncode == 0, report.stderr
    rows = {r["flow_run_id"]: r for r in map(json.loads, report.stdout.splitlines())}
    row = rows[triggered["flow_run_id"]]
    assert row["state"] == "COMPLETED" and row["tool"] == "feasibility"
    assert row["confidence"] == pytest.approx(
        output["content"]["summary"]["confidence"], abs=1e-3)
    assert row["cost_usd"] == pytest.approx(output["cost_usd"], abs=1e-6)


def test_broken_tool_reference_fails_the_run_naming_it(stack, served):
    run = stack.create_run("feasibility-interval", {
        "request": "anything", "tool": "no_such_package.tools:thing"})
    final = stack.wait_final(run["id"])
    assert final["state"]["type"] == "FAILED"
    message = final["state"]["message"]
    assert "no_such_package.tools:thing" in message
    assert "not under an allowed prefix" in message  # the allowlist refuses before importing


def test_server_creates_scheduled_runs(stack, served):
    def scheduled(dep_id: str) -> list[dict]:
        with stack.http() as http:
            return http.post("/flow_runs/filter", json={"flow_runs": {
                "deployment_id": {"any_": [dep_id]},
                "state": {"type": {"any_": ["SCHEDULED"]}}}}).json()

    daily = stack.deployment("feasibility-daily")
    interval = stack.deployment("feasibility-interval")
    daily_runs = stack.wait_for(lambda: scheduled(daily["id"]), 60, "daily scheduled runs")
    interval_runs = stack.wait_for(lambda: len(scheduled(interval["id"])) >= 2 and
                             scheduled(interval["id"]), 60, "interval scheduled runs")
    for run in daily_runs:
        start = datetime.fromisoformat(run["expected_start_time"].replace("Z", "+00:00"))
        assert (start.hour, start.minute) == (7, 0)  # "0 7 * * *" in UTC
        assert "auto-scheduled" in run["tags"]
    starts = sorted(datetime.fromisoformat(r["expected_start_time"].replace("Z", "+00:00"))
                    for r in interval_runs)
    assert (starts[1] - starts[0]).total_seconds() == pytest.approx(3600)


def test_cli_errors_are_one_line(stack, served):
    unknown = stack.steer("trigger", "no-such-deployment")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith(
        f"error: unknown deployment '{FLOW}/no-such-deployment'; available deployments: ")
    assert f"{FLOW}/feasibility-daily" in unknown.stderr
    assert unknown.stderr.count("\n") == 1

    dead = f"http://127.0.0.1:{stack.free_port()}/api"
    offline = stack.steer("runs", PREFECT_API_URL=dead)
    assert offline.returncode == 2
    assert f"no Prefect server reachable at PREFECT_API_URL={dead}" in offline.stderr
    assert "steer server start" in offline.stderr

    status = stack.steer("server", "status")
    assert status.returncode == 0 and "healthy" in status.stdout
    assert f"export PREFECT_API_URL={stack.api_url}" in status.stdout
