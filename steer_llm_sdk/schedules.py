"""Schedule any analysis: a Prefect deployment of the orchestration flow per recurring analysis.

    steer schedule create churn-weekly --tool my_pkg.tools:churn --request '{"query": "..."}' \
        --options '{"k": 5}' --cron '0 6 * * MON'
    steer schedule ls | pause NAME | resume NAME | delete NAME

Each schedule is a deployment of ``steer-orchestrate`` (the persisted-result flow of
``deployments/serve.py``) named NAME, tagged ``steer-schedule``, visible on the UI's Deployments
page. Without a work pool, ``steer serve`` runs it (it serves every ``steer-schedule``
deployment that has no pool); with ``work_pool=`` the pool's workers do.

Everything a run will resolve from the parameters is checked *here*, before anything reaches
the server: the tool reference must resolve in this environment, the request must be a JSON
object or text, tool options must parse for the tool, the config must validate. A bad field
raises :class:`ScheduleValidationError` naming it. The worker validates again when it runs
(parameters can be edited in the UI).
"""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from steer_llm_sdk.config import OrchestrationConfig

SCHEDULE_TAG = "steer-schedule"
FLOW_NAME = "steer-orchestrate"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

__all__ = [
    "SCHEDULE_TAG",
    "ScheduleInfo",
    "ScheduleValidationError",
    "acreate_schedule",
    "adelete_schedule",
    "alist_schedules",
    "aset_schedule_paused",
    "check_schedule",
    "schedule_parameters",
]


class ScheduleValidationError(ValueError):
    """A schedule argument is invalid; ``field`` names it (``tool``, ``request``, ...)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class ScheduleInfo(BaseModel):
    """One schedule as the server holds it."""

    name: str
    deployment_id: str
    tool: str | None = None
    schedule: str = Field("", description="'cron 0 6 * * MON (UTC)' or 'every 3600 s'.")
    paused: bool = False
    work_pool: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def schedule_parameters(
    tool: str,
    request: dict[str, Any] | str,
    tool_options: dict[str, Any] | None = None,
    config: OrchestrationConfig | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The deployment's JSON parameters, after checking each field as the worker will (the
    same input rules as Orchestrator.run: steer_llm_sdk.validation, steer_tools.inputs)."""
    from steer_llm_sdk.validation import InputError, check_request
    from steer_tools.inputs import check_config, check_tool_inputs, check_tool_options_shape
    from steer_tools.registry import ToolRegistry, get_global_registry
    from steer_tools.resolve import resolve_tool

    if not isinstance(tool, str) or not tool.strip():
        raise ScheduleValidationError("tool", "give a tool reference: an entry point name or "
                                      "'module:attribute'")
    # Registered-only tools would not exist in the worker's process: resolve against an empty
    # registry (entry points, allowed import paths) unless the global registry knows it.
    try:
        resolved = resolve_tool(tool, ToolRegistry(), field="tool")
    except Exception as exc:
        hint = (" (it is registered in this process only; a scheduled run resolves it in the "
                "worker: pass 'module:attribute' or an entry point)"
                if get_global_registry().get_tool(tool) is not None else "")
        raise ScheduleValidationError("tool", _one_line(str(exc)) + hint) from exc
    stage = "request"
    try:
        payload = check_request(request)
        stage = "options"
        options = check_tool_options_shape(tool_options)
        stage = "config"
        cfg = check_config(config)
        stage = "options"
        check_tool_inputs(resolved, payload, options, cfg)
    except (InputError, ValidationError, ValueError) as exc:
        field = getattr(exc, "field", "") or ""
        if field.startswith("request"):
            stage = "request"
        raise ScheduleValidationError(stage, _one_line(str(exc))) from exc
    if cfg.idempotency_key:
        raise ScheduleValidationError(
            "config", "idempotency_key would make every scheduled run replay the first; drop it")
    return {"request": payload, "tool": tool, "tool_options": dict(options),
            "config": cfg.to_parameters()}


def _schedule_objects(cron: str | None, interval_s: float | None, timezone: str) -> list[Any]:
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.schedules import Cron, Interval

    if (cron is None) == (interval_s is None):
        raise ScheduleValidationError("schedule", "give exactly one of --cron or --interval")
    if cron is not None:
        try:
            CronSchedule(cron=cron, timezone=timezone)
        except (ValidationError, ValueError) as exc:
            raise ScheduleValidationError("cron", f"{cron!r} is not a valid cron expression "
                                          f"in timezone {timezone!r}: "
                                          f"{_one_line(str(exc))[:200]}") from exc
        return [Cron(cron, timezone=timezone)]
    assert interval_s is not None
    if not interval_s > 0:
        raise ScheduleValidationError("interval", f"must be > 0 seconds, got {interval_s!r}")
    return [Interval(timedelta(seconds=float(interval_s)), timezone=timezone)]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ScheduleValidationError(
            "name", f"{name!r} must start with a letter or digit and use only letters, digits, "
            "'.', '_' and '-' (at most 100 characters)")
    return name


def check_schedule(name: str, cron: str | None, interval_s: float | None,
                   timezone: str = "UTC") -> None:
    """Name and schedule checks alone (the CLI runs them before contacting a server)."""
    _check_name(name)
    _schedule_objects(cron, interval_s, timezone)


async def acreate_schedule(
    name: str,
    tool: str,
    request: dict[str, Any] | str,
    tool_options: dict[str, Any] | None = None,
    config: OrchestrationConfig | dict[str, Any] | None = None,
    *,
    cron: str | None = None,
    interval_s: float | None = None,
    timezone: str = "UTC",
    work_pool: str | None = None,
    paused: bool = False,
) -> ScheduleInfo:
    """Create (or replace) the schedule NAME on the server of PREFECT_API_URL."""
    from prefect.client.orchestration import get_client
    from prefect.types.entrypoint import EntrypointType

    from steer_llm_sdk.deployments.serve import ENTRYPOINT, deployed_flow

    _check_name(name)
    parameters = schedule_parameters(tool, request, tool_options, config)
    schedules = _schedule_objects(cron, interval_s, timezone)
    deployment = await deployed_flow().ato_deployment(
        name=name, parameters=parameters, tags=["steer", SCHEDULE_TAG, f"tool:{tool}"],
        description=f"Scheduled steer analysis ({tool}); created by `steer schedule create`.",
        entrypoint_type=EntrypointType.MODULE_PATH, schedules=schedules, paused=paused,
    )
    deployment.entrypoint = ENTRYPOINT
    if work_pool:
        await _ensure_process_pool(work_pool)
    deployment_id = await deployment.aapply(work_pool_name=work_pool) if work_pool else \
        await deployment.aapply()
    async with get_client() as client:
        return _info(await client.read_deployment(deployment_id))


async def _ensure_process_pool(pool: str) -> None:
    """A process pool of that name, created if missing (a worker can also create it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    async with get_client() as client:
        try:
            await client.read_work_pool(pool)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))


def _describe(schedules: list[Any]) -> str:
    parts = []
    for item in schedules or []:
        sched = getattr(item, "schedule", item)
        if getattr(sched, "cron", None):
            parts.append(f"cron {sched.cron} ({sched.timezone or 'UTC'})")
        elif getattr(sched, "interval", None) is not None:
            parts.append(f"every {sched.interval.total_seconds():g} s")
        else:
            parts.append(type(sched).__name__)
    return ", ".join(parts)


def _info(dep: Any) -> ScheduleInfo:
    params = dict(dep.parameters or {})
    return ScheduleInfo(name=dep.name, deployment_id=str(dep.id), tool=params.get("tool"),
                        schedule=_describe(dep.schedules), paused=bool(dep.paused),
                        work_pool=dep.work_pool_name, parameters=params)


async def alist_schedules() -> list[ScheduleInfo]:
    """Every ``steer-schedule`` deployment, by name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas import filters as f

    async with get_client() as client:
        deployments = await client.read_deployments(
            flow_filter=f.FlowFilter(name=f.FlowFilterName(any_=[FLOW_NAME])),
            deployment_filter=f.DeploymentFilter(tags=f.DeploymentFilterTags(
                all_=[SCHEDULE_TAG])))
    return sorted((_info(d) for d in deployments), key=lambda s: s.name)


async def _read_schedule(client: Any, name: str) -> Any:
    from prefect.exceptions import ObjectNotFound

    try:
        dep = await client.read_deployment_by_name(f"{FLOW_NAME}/{_check_name(name)}")
    except ObjectNotFound:
        dep = None
    if dep is None or SCHEDULE_TAG not in (dep.tags or []):
        known = ", ".join(s.name for s in await alist_schedules()) or "(none)"
        raise LookupError(f"no schedule named {name!r}; schedules: {known}")
    return dep


async def aset_schedule_paused(name: str, paused: bool) -> ScheduleInfo:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        dep = await _read_schedule(client, name)
        if paused:
            await client.pause_deployment(dep.id)
        else:
            await client.resume_deployment(dep.id)
        return _info(await client.read_deployment(dep.id))


async def adelete_schedule(name: str) -> ScheduleInfo:
    """Delete the deployment (its scheduled, not yet started runs go with it)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        dep = await _read_schedule(client, name)
        await client.delete_deployment(dep.id)
        return _info(dep)
