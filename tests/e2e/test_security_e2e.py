"""Input validation against a real `prefect server start` + `steer serve` (issue 12).

Before: a REST body with ``"config": {"budget": {"dollars": 1}}`` or ``steer trigger ...
--options '{"k": "three"}'`` created a run that failed later in the worker with a raw pydantic
traceback, although docs/deployments.md promised HTTP 409 before a run exists."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FLOW = "steer-orchestrate"


def _runs_with_query(stack, query: str) -> list[dict]:
    """Flow runs due by now (not the schedule's future runs) whose request is ``query``."""
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    with stack.http() as http:
        runs = http.post("/flow_runs/filter", json={
            "flow_runs": {"expected_start_time": {"before_": soon}}, "limit": 200}).json()
    return [r for r in runs if (r.get("parameters") or {}).get("request") in (
        query, {"query": query})]


@pytest.mark.parametrize("bad", [
    {"config": {"budget": {"dollars": 1}}},
    {"config": {"budget": {"tokens": True}}},
    {"config": {"trace_id": "a\r\nX-Injected: 1"}},
    {"config": {"max_parallel": "10"}},
    {"tool_options": {"k": "three"}},
    {"tool_options": {"early_stp": False}},
    {"tool_options": {"seeds": [2**64, 1, 2]}},
])
def test_rest_wrongly_typed_nested_value_is_409_before_a_run_exists(stack, served, bad):
    query = f"security-e2e-{uuid.uuid4().hex}"
    dep_id = stack.deployment("feasibility-interval")["id"]
    with stack.http() as http:
        response = http.post(f"/deployments/{dep_id}/create_flow_run",
                             json={"parameters": {"request": {"query": query}, **bad}})
    assert response.status_code == 409, response.text
    field = next(iter(bad))
    assert f"Validation failed for field '{field}" in response.json()["detail"]
    assert _runs_with_query(stack, query) == []


def test_cli_trigger_with_a_wrong_option_type_is_one_line_exit_2_and_no_run(stack, served):
    query = f"security-e2e-{uuid.uuid4().hex}"
    result = stack.steer("trigger", "feasibility-daily", query, "--options", '{"k": "three"}')
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "tool_options['k']: got 'three'; accepted: an integer" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert _runs_with_query(stack, query) == []


def test_a_run_that_still_gets_bad_parameters_fails_at_once_with_one_message(stack, served):
    """An older deployment (or schema enforcement switched off) lets bad parameters through;
    the worker re-checks them before any provider call."""
    dep_id = stack.deployment("feasibility-interval")["id"]
    with stack.http() as http:
        response = http.post(f"/deployments/{dep_id}/create_flow_run", json={
            "parameters": {"request": {"query": "x"}, "config": {"budget": {"dollars": 1}}},
            "enforce_parameter_schema": False})
    assert response.status_code == 201, response.text
    final = stack.wait_final(response.json()["id"])
    assert final["state"]["type"] == "FAILED"
    message = final["state"]["message"]
    assert "InputError: config['budget']['dollars']: got 'dollars'; accepted: a key among " \
           "tokens, cost_usd, ms" in message
    assert "\n" not in message and "Traceback" not in message


def test_a_tool_reference_outside_the_allowlist_fails_without_importing(stack, served):
    run = stack.create_run("feasibility-interval", {"request": "anything", "tool": "os:getpid"})
    final = stack.wait_final(run["id"])
    assert final["state"]["type"] == "FAILED"
    message = final["state"]["message"]
    assert "cannot resolve tool 'os:getpid': module 'os' is not under an allowed prefix" in message
    assert "STEER_TOOL_MODULES=os" in message
