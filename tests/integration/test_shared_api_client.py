"""One Prefect API client per event loop (steer_llm_sdk/shared_api_client.py): the flow engine
reuses it across orchestrations, and it is closed when the loop shuts down."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client

from steer_llm_sdk.orchestration import (
    BundleTool,
    OrchestrationConfig,
    Orchestrator,
    ToolRegistry,
)

pytestmark = pytest.mark.usefixtures("prefect_backend")


class ClientSpy(BundleTool):
    """Records the Prefect client its replicate task runs see (the flow engine's)."""

    name = "client-spy"

    def __init__(self) -> None:
        self.clients: list[object] = []

    async def run_replicate(self, request, seed, context):
        self.clients.append(get_client())
        return {"ok": True}


def orchestrator(tool: BundleTool) -> Orchestrator:
    registry = ToolRegistry()
    registry.register_tool(tool)
    return Orchestrator(registry)


OPTIONS = {"k": 2, "early_stop": False}
IN_TASK_RUNS = {"eager_replicates": False}  # get_client() is called inside task runs


async def test_runs_on_one_loop_share_one_open_client():
    tool = ClientSpy()
    orch = orchestrator(tool)
    cfg = OrchestrationConfig(**IN_TASK_RUNS)
    await orch.run("q", tool.name, OPTIONS, cfg)
    await orch.run("q", tool.name, OPTIONS, cfg)
    assert len(tool.clients) == 4 and len({id(c) for c in tool.clients}) == 1
    assert not tool.clients[0]._closed  # still open for the next run on this loop


def test_the_client_is_closed_when_the_loop_ends():
    tool = ClientSpy()
    orch = orchestrator(tool)
    out = orch.run_sync("q", tool.name, OPTIONS, OrchestrationConfig(**IN_TASK_RUNS))
    assert out.status == "succeeded"
    assert tool.clients and all(c._closed for c in tool.clients)  # asyncio.run closed it


async def test_opt_out_gives_each_run_its_own_client(monkeypatch):
    monkeypatch.setenv("STEER_SHARED_API_CLIENT", "0")
    tool = ClientSpy()
    orch = orchestrator(tool)
    cfg = OrchestrationConfig(**IN_TASK_RUNS)
    await orch.run("q", tool.name, OPTIONS, cfg)
    await orch.run("q", tool.name, OPTIONS, cfg)
    first, second = tool.clients[0], tool.clients[2]
    assert first is not second and first._closed and second._closed


async def test_in_process_runs_write_no_result_files():
    """Naming a result storage turns persistence on in Prefect; in-process runs switch it off
    again (a service would otherwise leave one file per run in PREFECT_HOME/storage)."""
    from prefect.settings import get_current_settings

    storage = get_current_settings().results.local_storage_path
    before = set(storage.iterdir()) if storage.exists() else set()
    tool = ClientSpy()
    out = await orchestrator(tool).run("q", tool.name, OPTIONS)
    assert out.status == "succeeded"
    after = set(storage.iterdir()) if storage.exists() else set()
    assert after == before
