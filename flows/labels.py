"""Keep a flow run's name and tags telling the truth once the tool is known.

A planned run is created before the planner chose its tool, and a deployed run is created by
whoever triggered it; both learn the tool inside the flow, so the run is relabelled then (one
API call) to keep the UI's run list searchable by tool and trace id.
"""

from __future__ import annotations

import logging

from prefect.client.orchestration import get_client
from prefect.runtime import flow_run as runtime_flow_run

logger = logging.getLogger("steer_llm_sdk.flows")


def wanted_tags(tool_name: str, trace_id: str) -> list[str]:
    return ["steer", tool_name, f"tool:{tool_name}", f"trace:{trace_id}"]


async def label_flow_run(tool_name: str, trace_id: str) -> None:
    flow_run_id = runtime_flow_run.id
    if not flow_run_id:
        return
    current = list(runtime_flow_run.tags or [])
    tags = [t for t in current if t != "tool:planned"]
    tags += [t for t in wanted_tags(tool_name, trace_id) if t not in tags]
    name = f"{tool_name.rsplit(':', 1)[-1]}-{trace_id[:12]}"
    if tags == current and runtime_flow_run.name == name:
        return
    try:
        async with get_client() as client:
            await client.update_flow_run(flow_run_id, name=name, tags=tags)
    except Exception as exc:  # labels only help the UI; never fail a run over them
        logger.warning("could not relabel flow run %s: %s", flow_run_id, exc)
