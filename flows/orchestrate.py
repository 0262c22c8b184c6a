"""The orchestration flow: one Prefect flow run per orchestration.

    plan (only when no tool is named) -> run tool / bundle (with fallbacks) -> artifacts

Parameters are JSON (request, tool reference, tool options, OrchestrationConfig dump), so the
Prefect UI can show and re-run them; in-process callers attach non-JSON state (tool objects,
event callback) through a session id.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import uuid
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext, TagsContext
from prefect.runtime import flow_run as runtime_flow_run
from prefect.states import Failed
from steer_llm_sdk.flows.attempts import run_with_fallbacks
from steer_llm_sdk.flows.evidence import prefetch_previous, publish_evidence
from steer_llm_sdk.flows.idempotent import run_with_claim
from steer_llm_sdk.flows.labels import label_flow_run
from steer_llm_sdk.flows.orphans import track_claim
from steer_llm_sdk.flows.outputs import apply_ledger
from steer_llm_sdk.flows.partial import attach_partial
from steer_llm_sdk.tasks.runtime import RunSession, get_session, pop_session, register_session

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.console import install_console_filter
from steer_llm_sdk.errors import BudgetExceeded
from steer_llm_sdk.output import OrchestrationOutput
from steer_llm_sdk.prefect_patches import allowed, patch_off
from steer_llm_sdk.providers.ledger import use_ledger
from steer_llm_sdk.validation import check_request
from steer_tools.inputs import (
    check_config,
    check_fallbacks,
    check_tool_inputs,
    check_tool_options_shape,
)
from steer_tools.registry import get_global_registry
from steer_tools.resolve import resolve_tool


def _flow_run_name() -> str:
    params = runtime_flow_run.parameters or {}
    config = params.get("config")
    config = config if isinstance(config, dict) else {}  # bad parameters fail in the flow
    tool = params.get("tool") or "planned"
    tool = str(tool).rsplit(":", 1)[-1]
    trace = str(config.get("trace_id") or "")[:12] or _run_id_hex()[:12]
    return f"{tool}-{trace}"


def _run_id_hex() -> str:
    """A run's default trace id is its flow run id, so name, tags and output always agree."""
    run_id = runtime_flow_run.id
    return uuid.UUID(str(run_id)).hex if run_id else uuid.uuid4().hex


async def _label_deployed_run(tool: str | None, trace_id: str) -> None:
    """Runs started from a deployment (schedule, REST, UI) lack the tool/trace tags the SDK puts
    on its own runs; add them so every run can be filtered the same way in the UI."""
    context = FlowRunContext.get()
    run = context.flow_run if context else None
    # FlowRunContext, not prefect.runtime.deployment.id: that one costs an API call per run
    if run is None or run.deployment_id is None or not tool:
        return
    if not any(t.startswith("trace:") for t in run.tags or []):
        await label_flow_run(tool, trace_id)


def check_deployed_parameters(request: Any, tool: Any, tool_options: Any,
                              cfg: OrchestrationConfig) -> None:
    """Every parameter of a run nobody checked, against the rules of Orchestrator.run."""
    payload = check_request(request)
    options = check_tool_options_shape(tool_options)
    registry = get_global_registry()
    if tool is not None:
        check_tool_inputs(resolve_tool(tool, registry, field="tool"), payload, options, cfg)
    check_fallbacks(registry, cfg, options)


def normalise_request(request: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(request, str):
        return {"query": request}
    if isinstance(request, dict):
        return dict(request)
    raise TypeError(
        f"request must be a str or a dict, got {type(request).__name__}; pass "
        "{'query': '...'} or a plain string"
    )


@flow(name="steer-orchestrate", flow_run_name=_flow_run_name, validate_parameters=False)
async def orchestrate(
    request: dict[str, Any] | str,
    tool: str | None = None,
    tool_options: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    session_id: str | None = None,
) -> str:
    """Run one orchestration; returns the OrchestrationOutput as one JSON string (a failed
    status ends the run Failed, with the output as a dict in the state's data).

    One string, not a dict: Prefect walks a flow's return value looking for futures and
    states, which for a bundle means every replicate and statistic (docs/performance.md)."""
    logger = get_run_logger()
    session = get_session(session_id)
    # Parameters of a deployed run come from whoever created it (REST, UI, an older
    # deployment's defaults): check them all now, so a bad one fails the run in its first
    # second with one message, before any provider call. In-process runs were checked by run().
    install_console_filter()  # deployed runs too: one console line per failed replicate
    cfg = check_config(config)
    if session is None:
        check_deployed_parameters(request, tool, tool_options, cfg)
    cfg = cfg.model_copy(update={
        "trace_id": cfg.trace_id or _run_id_hex(),
        "request_id": cfg.request_id or uuid.uuid4().hex,
    })
    await _label_deployed_run(tool, cfg.trace_id)
    owns_session = session is None
    if session is None:  # a deployed run in another process: no caller state to attach
        session_id = uuid.uuid4().hex
        session = RunSession.create(cfg)
        register_session(session_id, session)
    try:
        # Run-level tags (tool, trace id, ...) stay on the flow run. Task runs must not inherit
        # them: Prefect acquires a tag concurrency lease per tagged task run (one API call each,
        # and a 503 + ~2 s client backoff whenever the SQLite server is busy).
        # every provider call of the run records its usage in the session's ledger
        with TagsContext(current_tags=set()), use_ledger(session.ledger):
            run = functools.partial(_run, session, session_id, request, tool, tool_options,
                                    cfg, logger)
            if cfg.idempotency_key and session.claim is None:  # deployed, REST, scheduled
                return await run_with_claim(session, cfg, tool, normalise_request(request),
                                            tool_options, run)
            return await run()
    finally:
        if owns_session:
            pop_session(session_id)


async def _run(session: RunSession, session_id: str, request: dict[str, Any] | str,
               tool: str | None, tool_options: dict[str, Any] | None,
               cfg: OrchestrationConfig, logger: Any) -> str:
    payload = normalise_request(request)
    started = time.monotonic()
    context = FlowRunContext.get()
    if session.run_key is None and context is not None and context.persist_result:
        # a persisted (deployed) run: a Prefect retry of it resumes its finished replicates
        session.run_key = f"flow-run:{runtime_flow_run.id}"
    tracking = None
    if session.claim is not None:  # record our run on the claim; crash a dead owner's run
        if session.defer_api_writes:
            session.defer(track_claim(session.claim))
        else:
            tracking = asyncio.ensure_future(track_claim(session.claim))
    try:
        return await _run_body(session, session_id, payload, tool, tool_options, cfg, logger,
                               started)
    finally:
        if tracking is not None:
            await tracking


async def _run_body(session: RunSession, session_id: str, payload: dict[str, Any],
                    tool: str | None, tool_options: dict[str, Any] | None,
                    cfg: OrchestrationConfig, logger: Any, started: float) -> str:
    emitter = session.emitter
    logger.info("orchestration trace_id=%s request_id=%s tool=%s", cfg.trace_id,
                cfg.request_id, tool or "<planner>")
    await emitter.emit("orchestration_started", tool_name=tool, request_keys=sorted(payload))
    remaining = None if session.deadline is None else max(session.deadline - time.monotonic(), 0)
    previous = prefetch_previous(tool, payload)  # overlaps the replicates (flows/evidence.py)
    try:
        async with asyncio.timeout(remaining):
            output = await run_with_fallbacks(session, session_id, payload, tool,
                                              dict(tool_options or {}), cfg)
    except TimeoutError as exc:
        limit = float(cfg.timeout_ms or 0)
        actual = round((time.monotonic() - session.started) * 1000, 3)
        await emitter.emit("timeout", tool_name=tool, limit_ms=limit, elapsed_ms=actual)
        raise attach_partial(time_exceeded(limit, actual), session, cfg) from exc
    except asyncio.CancelledError:
        await emitter.emit("cancelled", tool_name=tool)
        raise
    except BudgetExceeded as exc:
        await emitter.emit("error", tool_name=tool, error=exc.to_dict())
        raise attach_partial(exc, session, cfg) from None
    apply_ledger(output, session.ledger)
    output.elapsed_ms = round((time.monotonic() - started) * 1000, 3)
    exceeded = session.budget.first_exceeded(inclusive=False)
    if exceeded is not None:
        if output.status == "succeeded":  # complete, but over budget: partial by definition
            output.status = "partial"
        exceeded.partial_output = output  # type: ignore[attr-defined]
        await emitter.emit("error", tool_name=output.metadata.get("tool_name"),
                           error=exceeded.to_dict())
        raise exceeded
    user_metadata = {k: v for k, v in cfg.metadata.items() if k not in output.metadata}
    output.metadata = {**user_metadata, **output.metadata}
    output.metadata.update({  # engine facts last: user metadata never overwrites them
        "trace_id": cfg.trace_id,
        "request_id": cfg.request_id,
        "flow_run_id": str(runtime_flow_run.id) if runtime_flow_run.id else None,
        "budget": {"limits": session.budget.limits, "spent": session.budget.spent()},
    })
    if session.resumed:  # served from storage: no provider call in this run
        output.metadata["resumed_replicates"] = sorted(session.resumed)
    evidence = publish_evidence(  # artifacts + drift vs the previous run of this analysis
        output, payload, session.tools.get(output.metadata.get("tool_name") or ""),
        tool_options, session.emitter.redactor, previous)
    if session.defer_api_writes:
        session.defer(evidence)
    else:
        await evidence
    await emitter.emit("orchestration_completed", tool_name=output.metadata.get("tool_name"),
                       status=output.status, elapsed_ms=output.elapsed_ms,
                       cost_usd=output.cost_usd)
    if output.status == "failed":
        return Failed(message=_failure_message(output),  # type: ignore[return-value]
                      data=output.model_dump(mode="json"))
    return output.model_dump_json()


def time_exceeded(limit_ms: float, actual_ms: float) -> BudgetExceeded:
    return BudgetExceeded("time", limit_ms, actual_ms,
                          f"run exceeded timeout_ms={limit_ms:g} (ran {actual_ms:.0f} ms); "
                          "raise OrchestrationConfig.timeout_ms or lower k")


def _failure_message(output: OrchestrationOutput) -> str:
    errors = output.errors or {}
    parts = [f"{name}: {err.get('message')}" for name, err in errors.items()]
    return "orchestration failed: " + "; ".join(parts)[:900]


_IN_PROCESS: dict[str, Any] = {}


def in_process_flow() -> Any:
    """``orchestrate`` with its result storage named up front. Without it, Prefect asks the
    server for the default result storage on every flow run (a sync client, an SSL context and
    an API call each). Naming a storage turns persistence on in Prefect, so it is switched off
    again explicitly: the caller gets the output from memory, and a long-lived service would
    otherwise write one result file per run to PREFECT_HOME/storage."""
    from prefect.settings import get_current_settings

    path = get_current_settings().results.local_storage_path
    key = str(path)
    if key not in _IN_PROCESS:
        run_flow = orchestrate.with_options(result_storage=path, persist_result=False)
        if fast_serialize_parameters_usable(type(run_flow)):
            run_flow.serialize_parameters = functools.partial(_serialize_parameters, run_flow)
        _IN_PROCESS[key] = run_flow
    return _IN_PROCESS[key]


class _NotPlainJson(Exception):
    pass


def _plain_json_copy(value: Any) -> Any:
    """A copy of ``value`` if it is plain JSON (dict with str keys, list, str, int, float,
    bool, None: what ``jsonable_encoder`` returns unchanged), else raises _NotPlainJson."""
    kind = type(value)
    if value is None or kind in (str, int, float, bool):
        return value
    if kind is dict and all(type(k) is str for k in value):
        return {k: _plain_json_copy(v) for k, v in value.items()}
    if kind is list:
        return [_plain_json_copy(v) for v in value]
    raise _NotPlainJson


def _serialize_parameters(run_flow: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """``Flow.serialize_parameters`` without importing FastAPI (0.15-0.3 s on the first run
    in a process, for ``jsonable_encoder``) when a parameter is plain JSON, as Orchestrator's
    are; any other value still goes through Prefect's encoder."""
    out: dict[str, Any] = {}
    for name, value in parameters.items():
        try:
            out[name] = _plain_json_copy(value)
        except (_NotPlainJson, RecursionError):
            out.update(type(run_flow).serialize_parameters(run_flow, {name: value}))
    return out


def fast_serialize_parameters_usable(flow_cls: Any) -> bool:
    """The shortcut above stands in for ``Flow.serialize_parameters(self, parameters)``; if
    Prefect's method has another shape, Prefect's own runs (it imports FastAPI, ~0.2 s once)."""
    name = "fast-serialize-parameters"
    if not allowed(name):
        return False
    try:
        params = list(inspect.signature(flow_cls.serialize_parameters).parameters)
    except (AttributeError, TypeError, ValueError):
        params = []
    if params != ["self", "parameters"]:
        patch_off(name, f"Flow.serialize_parameters(self, parameters) has changed: {params}")
        return False
    return True
