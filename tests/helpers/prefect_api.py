"""Read flow and task runs back through the Prefect client, as a user inspecting runs would."""

from __future__ import annotations

import asyncio
import uuid

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId


async def read_flow_run(flow_run_id: str):
    async with get_client() as client:
        return await client.read_flow_run(uuid.UUID(flow_run_id))


async def read_task_runs(flow_run_id: str, expected: int, timeout_s: float = 15.0):
    """Task runs are recorded asynchronously by the server: poll until ``expected`` appear."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with get_client() as client:
        while True:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(flow_run_id)]))
            )
            settled = [r for r in runs if r.state is not None and r.state.is_final()]
            if len(settled) >= expected or asyncio.get_running_loop().time() > deadline:
                return runs
            await asyncio.sleep(0.2)
