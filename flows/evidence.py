"""Publish a run's evidence and compare it with the previous run of the same analysis.

An **analysis** is a tool plus a request: its key is the first 16 hex digits of the sha256 of
their canonical JSON, carried by every run as the tag ``analysis:<key>`` (set when the run is
created in process, or added here for deployed and planned runs). A deployment's scheduled
runs send one request, so they are one analysis; a REST call with another request is another.

After a bundle completes, this module (the only I/O of the drift feature; the statistics are
``steer_tools.statistics.drift``):

1. reads the newest COMPLETED flow run tagged with the same key (Prefect API:
   ``read_flow_runs`` filtered by tag and state, newest expected start first) and its
   ``evidence-fields`` artifact, whose ``values`` column holds each field's replicate values
   -- any host can read artifacts, unlike local result files. For a
   named tool the lookup starts with the run (``prefetch_previous``) and overlaps the
   replicates, so "previous" means completed before this run started;
2. compares the two runs' samples (Welch / Mann-Whitney, Fisher / chi-square, set items by
   Fisher, Holm-corrected);
3. writes the artifacts (``flows/artifacts.py``), including ``evidence-drift`` when there was a
   previous run, and emits the Prefect event ``steer.evidence.drift`` naming the changed fields
   when any changed, so an Automation can notify someone (docs/evidence-bundles.md).

Every failure here is logged and swallowed: the run's answer is already complete.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.runtime import flow_run as runtime_flow_run
from steer_llm_sdk.flows.artifacts import (
    drift_rows,
    evidence_rows,
    question_text,
    samples_from_rows,
    summary_markdown,
)

from steer_llm_sdk.output import OrchestrationOutput
from steer_llm_sdk.quiet import ui_url_for
from steer_llm_sdk.reliability.idempotency import canonical_request_hash
from steer_tools.bundle import BundleTool
from steer_tools.statistics.drift import DriftRow, bundle_samples, changed_fields, compare_samples
from steer_tools.statistics.summary import list_modes

logger = logging.getLogger("steer_llm_sdk.flows")
DRIFT_EVENT = "steer.evidence.drift"
ANALYSIS_TAG = "analysis:"
SAMPLES_KEY = "evidence-fields"  # its "values" column is what the next run compares with
DRIFT_KEY = "evidence-drift"
FLOW_NAME = "steer-orchestrate"
_CANDIDATES = 10  # newest completed runs searched for one with stored samples


def analysis_key(tool_name: str, request: dict[str, Any]) -> str:
    """Same tool + same request (canonical JSON) = same analysis."""
    return canonical_request_hash({"tool": tool_name, "request": request})[:16]


def analysis_tag(tool_name: str, request: dict[str, Any]) -> str:
    return ANALYSIS_TAG + analysis_key(tool_name, request)


def prefetch_previous(tool_name: str | None, request: dict[str, Any]) -> Any:
    """Start looking up the previous run while the replicates run, so the two API reads cost
    no wall time at the end; ``(tag, task)`` for ``publish_evidence``, or None. The task never
    raises (a failed lookup is None), so it needs no cleanup if the run ends early."""
    run_id = str(runtime_flow_run.id) if runtime_flow_run.id else None
    if not run_id or not tool_name:
        return None
    tag = analysis_tag(tool_name, request)
    return tag, asyncio.ensure_future(_previous_or_none(tag, run_id))


async def _previous_or_none(tag: str, run_id: str) -> dict[str, Any] | None:
    try:
        return await _previous_run(tag, run_id)
    except Exception as exc:  # a lookup failure only costs the comparison
        logger.warning("could not read the previous run of %s: %r", tag, exc)
        return None


async def publish_evidence(output: OrchestrationOutput, request: dict[str, Any],
                           tool: Any = None, tool_options: dict[str, Any] | None = None,
                           redactor: Any = None, prefetched: Any = None) -> None:
    """Artifacts, drift and the drift event for one finished run (see module docstring);
    ``prefetched``: what ``prefetch_previous`` returned at the start of the run."""
    bundle = output.evidence_bundle
    if bundle is None:
        return
    tool_name = output.metadata.get("tool_name") or bundle.meta.task
    tag = analysis_tag(tool_name, request)
    run_id = str(runtime_flow_run.id) if runtime_flow_run.id else None
    samples = bundle_samples([r.data for r in bundle.valid_replicates],
                             _list_modes(tool, tool_options))
    previous, drift = None, None
    if run_id and len(bundle.valid_replicates) >= 2:
        if prefetched is not None and prefetched[0] == tag:
            previous = await prefetched[1]
        else:  # planned runs, tool references: the tool's name is known only now
            previous = await _previous_or_none(tag, run_id)
        if previous is not None:
            try:
                drift = compare_samples(previous["samples"], samples)
            except Exception as exc:  # e.g. a hand-edited artifact: no comparison, no failure
                logger.warning("could not compare with run %s: %r", previous["id"], exc)
    markdown = summary_markdown(output, bundle, question=question_text(request, redactor),
                                previous=previous, drift=drift)
    writes = [acreate_markdown_artifact(markdown=markdown, key="evidence-summary",
                                        description="Evidence bundle summary")]
    rows = evidence_rows(bundle, samples)
    if rows:
        writes.append(acreate_table_artifact(
            table=rows, key=SAMPLES_KEY,
            description=f"Evidence bundle: per-field agreement and replicate values ({tag}; "
                        "the next run of this analysis compares itself with these)"))
    if previous is not None and drift is not None:
        changed = changed_fields(drift)
        writes.append(acreate_table_artifact(
            table=drift_rows(drift), key=DRIFT_KEY,
            description=f"Drift vs {previous['name']} ({previous['id']}): "
                        + (f"changed: {', '.join(changed)}" if changed else "no significant "
                           "change") + " (Holm-adjusted p <= 0.05)"))
        if changed:
            _emit_drift_event(tool_name, tag, run_id, previous, drift, changed)
    if run_id:
        writes.append(_ensure_tag(run_id, tag))
    # independent API writes: one round trip, not several; the run's answer is complete, so a
    # failed write is logged, not raised
    for result in await asyncio.gather(*writes, return_exceptions=True):
        if isinstance(result, Exception):
            logger.warning("evidence artifact or tag not written: %r", result)


def _list_modes(tool: Any, tool_options: dict[str, Any] | None) -> Any:
    if not isinstance(tool, BundleTool):
        return "set"
    try:
        options = tool.parse_options(tool_options)
    except ValueError:
        return "set"
    return list_modes(options.list_mode, tool.replicate_schema(options))


async def _previous_run(tag: str, run_id: str) -> dict[str, Any] | None:
    """The newest other COMPLETED run with this analysis tag that stored replicate values."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas import filters as f
    from prefect.client.schemas.sorting import FlowRunSort

    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=f.FlowFilter(name=f.FlowFilterName(any_=[FLOW_NAME])),
            flow_run_filter=f.FlowRunFilter(
                id=f.FlowRunFilterId(not_any_=[run_id]),
                tags=f.FlowRunFilterTags(all_=[tag]),
                state=f.FlowRunFilterState(type=f.FlowRunFilterStateType(any_=["COMPLETED"]))),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=_CANDIDATES)
        if not runs:
            return None
        artifacts = await client.read_artifacts(artifact_filter=f.ArtifactFilter(
            key=f.ArtifactFilterKey(any_=[SAMPLES_KEY]),
            flow_run_id=f.ArtifactFilterFlowRunId(any_=[r.id for r in runs])))
    stored = {a.flow_run_id: a.data for a in artifacts}
    for run in runs:  # newest first
        data = stored.get(run.id)
        if data is None:
            continue
        samples = samples_from_rows(data if isinstance(data, list) else _json_list(data))
        if samples:  # runs from before replicate values were stored have none
            return {"id": str(run.id), "name": run.name, "url": ui_url_for(str(run.id)),
                    "samples": samples}
    return None


def _json_list(data: Any) -> list[dict[str, Any]]:
    import json

    try:
        value = json.loads(data)
    except (TypeError, ValueError):
        return []
    return value if isinstance(value, list) else []


async def _ensure_tag(run_id: str, tag: str) -> None:
    """Deployed and planned runs learn their analysis inside the flow: tag them now (the SDK
    tags its own runs at creation, so this costs nothing there)."""
    if tag in (runtime_flow_run.tags or []):
        return
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        if tag not in run.tags:
            await client.update_flow_run(run_id, tags=[*run.tags, tag])


def _emit_drift_event(tool_name: str, tag: str, run_id: str | None, previous: dict[str, Any],
                      drift: list[DriftRow], changed: list[str]) -> None:
    from prefect.events import emit_event

    key = tag.removeprefix(ANALYSIS_TAG)
    emit_event(
        event=DRIFT_EVENT,
        resource={"prefect.resource.id": f"steer.analysis.{key}",
                  "prefect.resource.name": f"{tool_name} analysis {key}",
                  "steer.tool": tool_name},
        related=[*([{"prefect.resource.id": f"prefect.flow-run.{run_id}",
                     "prefect.resource.role": "flow-run"}] if run_id else []),
                 {"prefect.resource.id": f"prefect.flow-run.{previous['id']}",
                  "prefect.resource.role": "previous-flow-run"}],
        payload={
            "changed_fields": changed,
            "flow_run_id": run_id,
            "previous_flow_run_id": previous["id"],
            "rows": [r.as_dict() for r in drift if r.significant][:50],
        },
    )
