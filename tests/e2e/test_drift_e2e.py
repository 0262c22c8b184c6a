"""Drift between two deployed runs of one analysis, read back through the Prefect REST API:
the second run's evidence-drift artifact, its summary's link to the first run, the
steer.evidence.drift event, and `steer runs --drift`."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def table(artifact: dict) -> list[dict]:
    data = artifact["data"]
    return json.loads(data) if isinstance(data, str) else data


def test_second_run_has_drift_artifact_and_event(stack, drift_runs):
    first, second = drift_runs
    analysis = [t for t in second["tags"] if t.startswith("analysis:")]
    assert analysis and analysis == [t for t in first["tags"] if t.startswith("analysis:")]

    assert "evidence-drift" not in stack.artifacts(first["id"])  # nothing before it
    artifacts = stack.artifacts(second["id"])
    drift = artifacts["evidence-drift"]
    assert drift["type"] == "table" and first["id"] in drift["description"]
    rows = table(drift)
    changed = {r["field"] for r in rows if r["significant"] == "yes"}
    assert changed, rows
    for row in rows:
        assert {"field", "before", "after", "test", "p", "significant"} <= set(row)
    summary = artifacts["evidence-summary"]["data"]
    assert first["id"] in summary and "drift in" in summary
    assert "Rebuild the data warehouse" in summary  # the question

    def drift_events() -> list[dict]:
        with stack.http() as http:
            found = http.post("/events/filter", json={"filter": {
                "event": {"name": ["steer.evidence.drift"]},
                "any_resource": {"id": [f"prefect.flow-run.{second['id']}"]}}}).json()
        return found.get("events", [])

    events = stack.wait_for(drift_events, 60, "the steer.evidence.drift event")
    event = events[0]
    assert set(event["payload"]["changed_fields"]) == changed
    assert event["payload"]["previous_flow_run_id"] == first["id"]
    assert event["resource"]["prefect.resource.id"] == \
        "steer.analysis." + analysis[0].removeprefix("analysis:")

    listed = stack.steer("runs", "--drift", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = {r["flow_run_id"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert set(runs[second["id"]]["drift"]) == changed and first["id"] not in runs
