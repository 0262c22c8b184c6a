"""What a deployed run leaves in result storage, read the way `steer trigger --wait` reads it.

The deployed flow runs here as a worker would run it (tool by reference, the simulator as the
model, no caller session); the state is then read back from the server, so its result comes
from the file, not from memory.
"""

from __future__ import annotations

import json
import uuid

import pytest
from prefect.client.orchestration import get_client
from steer_llm_sdk.deployments.serve import deployed_flow
from steer_llm_sdk.tasks.durable import KEY_PREFIX as DURABLE_PREFIX

from steer_llm_sdk.orchestration import OrchestrationConfig
from steer_llm_sdk.trigger import _read_output

pytestmark = pytest.mark.usefixtures("prefect_backend")


@pytest.fixture
def worker_env(llm_simulator, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", llm_simulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-simulator")


async def _run_and_reread(flow):
    trace = uuid.uuid4().hex
    state = await flow("Ship v2 in a week", "feasibility", {"k": 2, "early_stop": False},
                       OrchestrationConfig(trace_id=trace).to_parameters(), return_state=True)
    assert state.is_completed(), state.message
    async with get_client() as client:
        run = await client.read_flow_run(state.state_details.flow_run_id)
    return run.state, trace


@pytest.mark.usefixtures("worker_env")
async def test_deployed_result_is_a_json_record_trigger_reads(tmp_path):
    state, trace = await _run_and_reread(deployed_flow(tmp_path))
    out = await _read_output(state)
    assert out is not None and out.status == "succeeded"
    assert out.metadata["trace_id"] == trace

    # the run's result file (the replicates' durable results sit beside it: tasks/durable.py)
    (path,) = [p for p in tmp_path.rglob("*")
               if p.is_file() and not p.name.startswith(DURABLE_PREFIX)]
    stored = json.loads(path.read_text())  # the output document itself: `jq . <file>`
    assert stored["metadata"]["trace_id"] == trace
    assert stored["content"]["meta"]["k"] == 2  # the evidence bundle
    assert stored["status"] == "succeeded"
    assert state.data.serializer.type == "json"  # the record Prefect keeps in the run's state

    # docs/deployments.md's REST example: the run's artifacts, without the unnamed result record
    run_filter = {"flow_run_id": {"any_": [str(state.state_details.flow_run_id)]}}
    async with get_client() as client:
        every = (await client._client.post("/artifacts/filter",
                                           json={"artifacts": run_filter})).json()
        named = (await client._client.post("/artifacts/filter", json={
            "artifacts": {**run_filter, "key": {"exists_": True}}})).json()
    assert None in {a["key"] for a in every}  # what the example used to list too
    assert sorted(a["key"] for a in named) == ["evidence-fields", "evidence-summary"]


@pytest.mark.usefixtures("worker_env")
async def test_results_pickled_by_earlier_versions_still_read(tmp_path):
    from steer_llm_sdk.flows.orchestrate import orchestrate

    earlier = orchestrate.with_options(persist_result=True, result_storage=tmp_path)
    state, trace = await _run_and_reread(earlier)
    assert state.data.serializer.type == "pickle"  # Prefect's default until this version
    out = await _read_output(state)
    assert out is not None and out.metadata["trace_id"] == trace
