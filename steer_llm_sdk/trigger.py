"""Trigger a deployed orchestration through the Prefect API (``SteerLLMClient.trigger``).

Unlike ``SteerLLMClient.orchestrate``, the run happens wherever the deployment is served or its
work pool's workers run: this process only creates the flow run and, when asked to wait, polls
it and reads the persisted result. So nothing here touches the caller's tool registry or
provider keys; the request, a tool *reference* and the JSON config are all that travel.

Tags put on the run: ``steer``, ``tool:<name>``, the bare tool name, ``trace:<trace id>`` and,
for an idempotency key, ``idem:<first 12 hex of its sha256>`` (the key itself is not a tag).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from typing import Any

from pydantic import BaseModel, Field

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.errors import OrchestratorError
from steer_llm_sdk.output import OrchestrationOutput, output_from_result
from steer_llm_sdk.validation import check_idempotency_key, check_name, check_request
from steer_tools.inputs import check_config, check_tool_options_shape

DEFAULT_FLOW = "steer-orchestrate"
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class ServerUnavailableError(OrchestratorError, ConnectionError):
    """No Prefect server answers at PREFECT_API_URL (or none is configured)."""

    code = "server_unavailable"

    def __init__(self, api_url: str | None, reason: str = ""):
        self.api_url = api_url
        if api_url:
            where = f"no Prefect server reachable at PREFECT_API_URL={api_url}"
            fix = "start one with `steer server start` and export the PREFECT_API_URL it prints"
        else:
            where = ("PREFECT_API_URL is not set and no `steer server` is running (or "
                     "STEER_DISCOVER_SERVER=0)")
            fix = "start one with `steer server start`: later commands and scripts find it"
        super().__init__(f"{where}{f' ({reason})' if reason else ''}; {fix}")


class DeploymentNotFoundError(OrchestratorError, LookupError):
    """The named deployment does not exist on the server; ``available`` lists those that do."""

    code = "deployment_not_found"

    def __init__(self, name: str, available: list[str]):
        self.name = name
        self.available = available
        listed = ", ".join(available) or "(none: is `steer serve` running?)"
        super().__init__(f"unknown deployment {name!r}; available deployments: {listed}")


class TriggerResult(BaseModel):
    """What a trigger created; ``output`` is set once a waited-for run has finished."""

    deployment: str
    flow_run_id: str
    flow_run_name: str | None = None
    state: str | None = Field(None, description="Prefect state type, e.g. SCHEDULED, COMPLETED.")
    state_message: str | None = None
    tags: list[str] = Field(default_factory=list)
    trace_id: str | None = None
    ui_url: str | None = None
    output: OrchestrationOutput | None = None

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


def deployment_full_name(name: str) -> str:
    """'feasibility-daily' -> 'steer-orchestrate/feasibility-daily'; 'flow/dep' unchanged."""
    return name if "/" in name else f"{DEFAULT_FLOW}/{name}"


def idempotency_tag(key: str) -> str:
    return "idem:" + hashlib.sha256(key.encode()).hexdigest()[:12]


def trigger_tags(tool: str | None, trace_id: str, idempotency_key: str | None) -> list[str]:
    """The same tool/trace tags the in-process orchestrator sets, so the UI filters both."""
    tags = ["steer", f"tool:{tool or 'planned'}", f"trace:{trace_id}"]
    if tool:
        tags.append(tool)
    if idempotency_key:
        tags.append(idempotency_tag(idempotency_key))
    return tags


def configured_api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def ui_base_url(api_url: str | None) -> str | None:
    return api_url.rstrip("/").removesuffix("/api") if api_url else None


async def ensure_server(api_url: str | None = None, timeout_s: float = 3.0) -> str:
    """Fail fast with a one-line reason instead of the client's retries against a dead URL."""
    import httpx

    if not api_url and not configured_api_url():
        from steer_llm_sdk.ephemeral import use_local_steer_server

        use_local_steer_server()  # `steer server start`'s server, as the CLI finds it
    api_url = api_url or configured_api_url()
    if not api_url:
        raise ServerUnavailableError(None)
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            response = await http.get(api_url.rstrip("/") + "/health")
    except httpx.HTTPError as exc:
        raise ServerUnavailableError(api_url, type(exc).__name__) from exc
    if response.status_code != 200:
        raise ServerUnavailableError(api_url, f"health check answered {response.status_code}")
    return api_url


async def read_deployment(client: Any, full_name: str) -> Any:
    from prefect.exceptions import ObjectNotFound

    try:
        return await client.read_deployment_by_name(full_name)
    except ObjectNotFound:
        deployments = await client.read_deployments()
        flows = {f.id: f.name for f in await client.read_flows()}
        available = sorted(f"{flows.get(d.flow_id, '?')}/{d.name}" for d in deployments)
        raise DeploymentNotFoundError(full_name, available) from None


def _run_config(config: OrchestrationConfig | None, defaults: dict[str, Any],
                idempotency_key: str | None = None) -> dict[str, Any]:
    """The caller's config or the deployment's default, with a fresh trace id for this run.
    The idempotency key travels in the config: the flow claims it in the shared store, so a
    triggered run follows the same rules as an in-process one (flows/idempotent.py)."""
    base = config or OrchestrationConfig.model_validate(defaults or {})
    trace_id = (config.trace_id if config else None) or uuid.uuid4().hex
    key = idempotency_key or (config.idempotency_key if config else None)
    return base.model_copy(update={"trace_id": trace_id, "idempotency_key": key}).to_parameters()


FAILED_STATES = {"FAILED", "CRASHED", "CANCELLED"}


def _effective_digest(parameters: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The request hash the flow will compute for these parameters (run_claims.run_digest)."""
    from steer_llm_sdk.flows.orchestrate import normalise_request
    from steer_llm_sdk.reliability.run_claims import run_digest

    merged = {**defaults, **parameters}
    return run_digest(normalise_request(merged.get("request") or {}), merged.get("tool"),
                      merged.get("tool_options"))


async def _earlier_run(client: Any, deployment_id: Any, key: str, tool: str | None,
                       digest: str, defaults: dict[str, Any]) -> tuple[Any, int]:
    """An earlier run of this deployment with the same key and tool: ConflictError if it was
    for another request; else (the run to return, or None) and how many such runs failed.
    Failed runs are not answers: as in process, the key may be run again."""
    from prefect.client.schemas import filters as f
    from prefect.client.schemas.sorting import FlowRunSort

    from steer_llm_sdk.errors import ConflictError
    from steer_llm_sdk.reliability.idempotency import scoped_key

    runs = await client.read_flow_runs(
        flow_run_filter=f.FlowRunFilter(tags=f.FlowRunFilterTags(
            all_=[idempotency_tag(key), f"tool:{tool or 'planned'}"])),
        deployment_filter=f.DeploymentFilter(id=f.DeploymentFilterId(any_=[deployment_id])),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=50)
    failed = 0
    for run in runs:
        state = run.state.type.value if run.state else None
        if _effective_digest(run.parameters or {}, defaults) != digest:
            if state not in FAILED_STATES:
                raise ConflictError(scoped_key(key, tool or "planned"))
            continue
        if state in FAILED_STATES:
            failed += 1
        else:
            return run, failed
    return None, failed


def check_against_tool(tool_ref: Any, request: Any, tool_options: Any,
                       config: dict[str, Any]) -> None:
    """The tool-specific checks (option names and values, request fields) when the tool
    resolves here too; otherwise the worker applies them (its environment decides which
    tools exist), and the server's parameter schema still refuses wrongly typed values."""
    from steer_tools.inputs import check_tool_inputs
    from steer_tools.registry import get_global_registry
    from steer_tools.resolve import resolve_tool

    if not isinstance(tool_ref, str):
        return
    try:
        tool = resolve_tool(tool_ref, get_global_registry(), field="tool")
    except (ValueError, OrchestratorError):
        return
    options = dict(tool_options or {})
    if request is None:  # the deployment's default request is checked once it is known
        tool.check_options(options)
        return
    check_tool_inputs(tool, check_request(request), options, check_config(config))


async def _read_output(state: Any) -> OrchestrationOutput | None:
    """The persisted return value (a JSON string for succeeded and partial runs, a dict in the
    Failed state of a failed-status run). A run the flow failed with ConflictError (its key
    was claimed for another request) raises it here."""
    from steer_llm_sdk.errors import ConflictError

    try:
        data = await state.aresult(raise_on_failure=False)
    except Exception:  # result not persisted / not readable on this host
        data = None
    if isinstance(data, ConflictError):
        raise data
    message = state.message or ""
    if data is None and state.is_failed() and "ConflictError: " in message:
        text = message.split("ConflictError: ", 1)[1]
        key = re.search(r"idempotency key '([^']*)'", text)
        raise ConflictError(key.group(1) if key else "", text)
    return output_from_result(data) if isinstance(data, dict | str) else None


async def atrigger_deployment(
    deployment: str,
    request: dict[str, Any] | str | None = None,
    tool: str | None = None,
    tool_options: dict[str, Any] | None = None,
    config: OrchestrationConfig | None = None,
    *,
    wait: bool = False,
    timeout_s: float | None = None,
    idempotency_key: str | None = None,
    poll_interval_s: float = 1.0,
) -> TriggerResult:
    """Create a flow run of ``deployment``; with ``wait`` poll until it is final (or
    ``timeout_s`` passes) and read its OrchestrationOutput. Arguments left as None take the
    deployment's default parameters."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import arun_deployment

    if config is not None and not isinstance(config, OrchestrationConfig):
        raise TypeError(f"config must be an OrchestrationConfig, got {type(config).__name__}")
    # Checked here first: a bad value is one error now, not a flow run failing in a worker.
    payload = check_request(request) if request is not None else None
    if tool is not None:
        check_name("tool", tool)
    tool_options = check_tool_options_shape(tool_options) if tool_options is not None else None
    check_idempotency_key(idempotency_key)
    if config is not None:
        check_config(config.model_dump())
    if tool is not None:  # the tool is known before asking the server
        check_against_tool(tool, payload, tool_options, (config or OrchestrationConfig())
                           .to_parameters())
    api_url = await ensure_server()
    full_name = deployment_full_name(deployment)
    async with get_client() as client:
        dep = await read_deployment(client, full_name)
        defaults = dict(dep.parameters or {})
        parameters: dict[str, Any] = {
            "config": _run_config(config, defaults.get("config") or {}, idempotency_key)
        }
        check_against_tool(tool if tool is not None else defaults.get("tool"),
                           payload if payload is not None else defaults.get("request"),
                           tool_options if tool_options is not None
                           else defaults.get("tool_options"), parameters["config"])
        idempotency_key = parameters["config"].get("idempotency_key")
        if payload is not None:
            parameters["request"] = payload
        if tool is not None:
            parameters["tool"] = tool
        if tool_options is not None:
            parameters["tool_options"] = dict(tool_options)
        trace_id = parameters["config"]["trace_id"]
        run_tool = tool if tool is not None else defaults.get("tool")
        started = time.monotonic()
        flow_run, prefect_key = None, None
        if idempotency_key:  # same key: same request -> the earlier run, other -> Conflict
            digest = _effective_digest(parameters, defaults)
            flow_run, failed = await _earlier_run(client, dep.id, idempotency_key, run_tool,
                                                  digest, defaults)
            prefect_key = f"steer:{idempotency_key}:{run_tool}:{digest[:16]}:{failed}"
        if flow_run is None:
            flow_run = await arun_deployment(
                dep.id, client=client, parameters=parameters, timeout=0, as_subflow=False,
                tags=trigger_tags(run_tool, trace_id, idempotency_key),
                idempotency_key=prefect_key,
            )
        while wait and not (flow_run.state and flow_run.state.is_final()):
            if timeout_s is not None and time.monotonic() - started >= timeout_s:
                break
            await asyncio.sleep(poll_interval_s)
            flow_run = await client.read_flow_run(flow_run.id)
    state = flow_run.state
    output = await _read_output(state) if wait and state and state.is_final() else None
    # A replayed idempotency key returns the earlier run: report *its* trace id.
    run_trace = ((flow_run.parameters or {}).get("config") or {}).get("trace_id") or trace_id
    base = ui_base_url(api_url)
    return TriggerResult(
        deployment=full_name,
        flow_run_id=str(flow_run.id),
        flow_run_name=flow_run.name,
        state=state.type.value if state else None,
        state_message=state.message if state else None,
        tags=list(flow_run.tags or []),
        trace_id=run_trace,
        ui_url=f"{base}/runs/flow-run/{flow_run.id}" if base else None,
        output=output,
    )


def trigger_deployment(*args: Any, **kwargs: Any) -> TriggerResult:
    """Blocking :func:`atrigger_deployment`; also works under a running event loop."""
    from steer_llm_sdk.orchestration.orchestrator import run_coroutine_sync

    return run_coroutine_sync(atrigger_deployment(*args, **kwargs))
