"""Drift between two real runs of one analysis (Prefect harness, simulator over HTTP): the second
run finds the first through the API (analysis tag, COMPLETED), compares the stored samples and
publishes evidence-drift; the summary links the previous run and shows the question redacted."""

from __future__ import annotations

import json
import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from steer_llm_sdk.flows.evidence import analysis_tag

from steer_llm_sdk.orchestration import OrchestrationConfig, Orchestrator, ToolRegistry
from steer_llm_sdk.providers import OpenAIProvider
from steer_tools.examples import FeasibilityAnalysis
from steer_tools.llm_bundle import LLMBundleTool

pytestmark = pytest.mark.usefixtures("prefect_backend")


async def artifacts_of(flow_run_id: str) -> dict[str, object]:
    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(flow_run_id)])))
    return {a.key: a for a in found}


async def test_second_run_of_an_analysis_reports_drift(llm_simulator):
    tool = LLMBundleTool(name="feasibility-drift", model="openai:gpt-4o-mini",
                         system="Judge feasibility.", user_template="Assess: {query}",
                         output_schema=FeasibilityAnalysis,
                         provider=OpenAIProvider(api_key="sk-test",
                                                 base_url=llm_simulator.base_url))
    registry = ToolRegistry()
    registry.register_tool(tool)
    orch = Orchestrator(registry)
    # deterministic: the simulator answers this prompt differently under the variant below
    # (feasible flips: False 8/8 -> True; Fisher, Holm-adjusted p < 0.05)
    request = {"query": "Rebuild the ACME data warehouse in two months with one analyst."}
    options = {"k": 8, "early_stop": False}

    def redact(payload: dict) -> dict:
        if isinstance(payload.get("query"), str):
            payload["query"] = payload["query"].replace("ACME", "[redacted]")
        return payload

    hide = OrchestrationConfig(redactor_cb=redact)

    first = await orch.run(request, tool.name, options, hide)
    assert first.status == "succeeded"
    first_id = first.metadata["flow_run_id"]
    stored = await artifacts_of(first_id)
    assert "evidence-drift" not in stored  # nothing to compare with yet
    assert {"evidence-summary", "evidence-fields"} <= set(stored)
    fields = json.loads(stored["evidence-fields"].data)
    score = next(row for row in fields if row["field"] == "score")
    assert score["type"] == "numeric" and len(json.loads(score["values"])) == 8
    summary = stored["evidence-summary"].data
    assert "first completed run of this analysis" in summary
    assert "Rebuild the [redacted] data warehouse" in summary and "ACME" not in summary
    assert "gpt-4o-mini" in summary and "v1.0.0" in summary

    llm_simulator.answer_variant = "updated-model"  # the "model" now answers differently
    try:
        second = await orch.run(request, tool.name, options, hide)
    finally:
        llm_simulator.answer_variant = ""
    second_id = second.metadata["flow_run_id"]
    stored = await artifacts_of(second_id)
    drift = stored["evidence-drift"]
    rows = json.loads(drift.data) if isinstance(drift.data, str) else drift.data
    changed = {r["field"] for r in rows if r["significant"] == "yes"}
    assert changed == {"feasible"}
    assert first_id in drift.description
    for row in rows:
        assert set(row) == {"field", "before", "after", "test", "p", "p_holm", "significant"}
        if row["p"] is not None:
            assert row["p_holm"] >= row["p"]
    summary = stored["evidence-summary"].data
    assert first_id in summary and "drift in" in summary

    async with get_client() as client:
        run = await client.read_flow_run(uuid.UUID(second_id))
    assert analysis_tag(tool.name, request) in run.tags
