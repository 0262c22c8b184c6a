"""SteerLLMClient: the host application's handle on tools and orchestrations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from steer_llm_sdk.config import OrchestrationConfig, ReliabilityConfig
from steer_llm_sdk.events import EventCallback
from steer_llm_sdk.output import OrchestrationOutput
from steer_tools.base import Tool
from steer_tools.registry import ToolRegistry, get_global_registry

if TYPE_CHECKING:
    from steer_llm_sdk.schedules import ScheduleInfo
    from steer_llm_sdk.trigger import TriggerResult


class SteerLLMClient:
    """Registers tools and runs them. By default it shares the process-wide registry, so tools
    registered here are visible to any Orchestrator; pass ``registry=`` to isolate."""

    def __init__(self, registry: ToolRegistry | None = None,
                 reliability_config: ReliabilityConfig | None = None) -> None:
        self.registry = registry if registry is not None else get_global_registry()
        self.reliability_config = reliability_config
        self._orchestrator: Any = None

    def register_tool(self, tool: Tool, *, replace: bool = False) -> None:
        self.registry.register_tool(tool, replace=replace)

    def unregister_tool(self, name: str) -> bool:
        return self.registry.unregister(name)

    def list_tools(self) -> dict[str, dict[str, str]]:
        return self.registry.list_tools()

    def get_tool(self, name: str) -> Tool | None:
        return self.registry.get_tool(name)

    @property
    def orchestrator(self) -> Any:
        if self._orchestrator is None:
            from steer_llm_sdk.orchestration import ReliableOrchestrator

            self._orchestrator = ReliableOrchestrator(
                reliability_config=self.reliability_config, registry=self.registry
            )
        return self._orchestrator

    async def orchestrate(
        self,
        request: dict[str, Any] | str,
        tool_name: str | None = None,
        tool_options: dict[str, Any] | None = None,
        options: OrchestrationConfig | None = None,
        on_event: EventCallback | None = None,
    ) -> OrchestrationOutput:
        """Run through a ReliableOrchestrator (planner, fallback, idempotency) in-process."""
        return await self.orchestrator.run(request, tool_name, tool_options, options, on_event)

    def orchestrate_sync(self, *args: Any, **kwargs: Any) -> OrchestrationOutput:
        from steer_llm_sdk.orchestration.orchestrator import run_coroutine_sync

        return run_coroutine_sync(self.orchestrate(*args, **kwargs))

    def trigger(
        self,
        deployment: str,
        request: dict[str, Any] | str | None = None,
        tool: str | None = None,
        tool_options: dict[str, Any] | None = None,
        config: OrchestrationConfig | None = None,
        wait: bool = False,
        timeout_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> TriggerResult:
        """Start a run of a *deployed* orchestration through the Prefect API (PREFECT_API_URL).

        It runs where the deployment is served, so ``tool`` is a reference (entry point or
        'module:attribute'), not a tool registered here. Returns the flow run id at once; with
        ``wait=True`` also the OrchestrationOutput. See steer_llm_sdk.trigger."""
        from steer_llm_sdk.trigger import trigger_deployment

        return trigger_deployment(deployment, request, tool, tool_options, config, wait=wait,
                                  timeout_s=timeout_s, idempotency_key=idempotency_key)

    def schedule(
        self,
        name: str,
        tool: str,
        request: dict[str, Any] | str,
        tool_options: dict[str, Any] | None = None,
        config: OrchestrationConfig | None = None,
        *,
        cron: str | None = None,
        interval_s: float | None = None,
        timezone: str = "UTC",
        work_pool: str | None = None,
        paused: bool = False,
    ) -> ScheduleInfo:
        """Create (or replace) a recurring analysis: a deployment of the orchestration flow on
        the server of PREFECT_API_URL, run by `steer serve` or ``work_pool``'s workers.

        ``tool`` is a reference the worker resolves (entry point or 'module:attribute'); every
        parameter is validated now (ScheduleValidationError names the field). See
        steer_llm_sdk.schedules for listing, pausing and deleting."""
        from steer_llm_sdk.orchestration.orchestrator import run_coroutine_sync
        from steer_llm_sdk.schedules import acreate_schedule

        return run_coroutine_sync(acreate_schedule(
            name, tool, request, tool_options, config, cron=cron, interval_s=interval_s,
            timezone=timezone, work_pool=work_pool, paused=paused))
