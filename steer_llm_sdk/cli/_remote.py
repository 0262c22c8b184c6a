"""Commands that talk to a Prefect server: `steer serve`, `steer trigger`, `steer runs`."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

import typer

from steer_llm_sdk.cli._common import (
    EXIT_FAILED_RUN,
    cli_errors,
    note,
    parse_object,
    parse_request,
    prepare_prefect,
    require_server,
)
from steer_llm_sdk.cli._local import ConfigOpt, JsonOpt, KOpt, OptionsOpt, tool_options

FLOW_NAME = "steer-orchestrate"  # deployments.serve.FLOW_NAME, without importing Prefect


def serve(
    interval: Annotated[float, typer.Option(
        help="Seconds between runs of the feasibility-interval deployment.")] = 3600.0,
    cron: Annotated[str, typer.Option(
        help="Cron schedule (UTC) of the feasibility-daily deployment.")] = "0 7 * * *",
    limit: Annotated[int | None, typer.Option(help="Max flow runs at once.")] = None,
    poll: Annotated[float | None, typer.Option(
        min=0.1, help="Seconds between checks for due runs; a triggered run waits up to one "
        "poll to start. Default 2, or PREFECT_RUNNER_POLL_FREQUENCY if set.")] = None,
    schedules_only: Annotated[bool, typer.Option(
        "--schedules-only", help="Serve only `steer schedule` deployments, not the built-in "
        "feasibility ones.")] = False,
) -> None:
    """Serve the deployments (feasibility-daily, feasibility-interval) and every `steer
    schedule` deployment without a work pool (those existing when it starts) until Ctrl-C.

    Flow runs execute here, in child processes, with this environment's OPENAI_API_KEY /
    OPENAI_BASE_URL. Needs a server: PREFECT_API_URL or `steer server start`."""
    prepare_prefect()
    with cli_errors():
        api_url = require_server()
        note(f"serving against PREFECT_API_URL={api_url}; Ctrl-C stops (schedules pause)")
        from steer_llm_sdk.deployments.serve import serve_deployments

        serve_deployments(interval_s=interval, cron=cron, limit=limit, poll_s=poll,
                          builtin=not schedules_only)


def trigger(
    deployment: Annotated[str, typer.Argument(
        help="Deployment name ('feasibility-daily' or 'flow/deployment').")],
    request: Annotated[str | None, typer.Argument(
        help="Request as JSON or plain text; omitted = the deployment's default.")] = None,
    tool: Annotated[str | None, typer.Option(
        help="Tool reference (entry point or 'module:attribute'); default: the deployment's.")
    ] = None,
    k: KOpt = None, options: OptionsOpt = None, config: ConfigOpt = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run; print its report.")
                    ] = False,
    timeout: Annotated[float | None, typer.Option(help="With --wait: give up after seconds.")
                       ] = None,
    idempotency_key: Annotated[str | None, typer.Option(
        help="Same key, same deployment: the earlier run is returned, no new run.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a run of a deployment through the Prefect API; prints the flow run id.

    \b
    Example: steer trigger feasibility-daily '{"query": "Ship v2 in a week"}' --k 3 --wait
    """
    payload = parse_request(request) if request is not None else None
    opts = tool_options(options, k)
    fields = parse_object(config, "--config")
    prepare_prefect()
    with cli_errors():
        require_server()
        from steer_llm_sdk.config import OrchestrationConfig
        from steer_llm_sdk.trigger import trigger_deployment

        cfg = OrchestrationConfig.model_validate(fields) if fields is not None else None
        result = trigger_deployment(deployment, payload, tool, opts, cfg, wait=wait,
                                    timeout_s=timeout, idempotency_key=idempotency_key)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        typer.echo(f"flow run {result.flow_run_id}  name {result.flow_run_name}  "
                   f"state {result.state}")
        if result.ui_url:
            typer.echo(f"UI: {result.ui_url}")
        if result.output is not None:
            from steer_llm_sdk.report import format_report

            typer.echo(format_report(result.output, ui_url=result.ui_url))
        elif wait and result.is_final and result.state != "COMPLETED":
            typer.echo(f"run ended {result.state}: {result.state_message}")
        elif wait and not result.is_final:
            typer.echo(f"still {result.state} after {timeout} s; follow it in the UI")
    failed = result.output.status == "failed" if result.output else result.state != "COMPLETED"
    if wait and failed:
        raise typer.Exit(EXIT_FAILED_RUN)


_CONFIDENCE = re.compile(r"\*\*confidence\*\*: ([0-9.]+)")
_COST = re.compile(r"\*\*cost\*\*: \$([0-9.]+)")


async def recent_runs(limit: int, deployment: str | None,
                      include_scheduled: bool) -> list[dict[str, Any]]:
    """Flow runs of the orchestration flow, newest first, with confidence and cost from their
    evidence-summary artifact (readable from any host, unlike the persisted result)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas import filters as f
    from prefect.client.schemas.sorting import FlowRunSort

    from steer_llm_sdk.trigger import deployment_full_name, read_deployment

    async with get_client() as client:
        dep_filter = None
        if deployment:
            dep = await read_deployment(client, deployment_full_name(deployment))
            dep_filter = f.DeploymentFilter(id=f.DeploymentFilterId(any_=[dep.id]))
        run_filter = None if include_scheduled else f.FlowRunFilter(
            state=f.FlowRunFilterState(type=f.FlowRunFilterStateType(not_any_=["SCHEDULED"])))
        runs = await client.read_flow_runs(
            flow_filter=f.FlowFilter(name=f.FlowFilterName(any_=[FLOW_NAME])),
            deployment_filter=dep_filter, flow_run_filter=run_filter,
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit)
        ids = [r.id for r in runs]
        artifacts = await client.read_artifacts(artifact_filter=f.ArtifactFilter(
            key=f.ArtifactFilterKey(any_=["evidence-summary", "evidence-drift"]),
            flow_run_id=f.ArtifactFilterFlowRunId(any_=ids))) if ids else []
        dep_ids = list({r.deployment_id for r in runs if r.deployment_id})
        deployments = await client.read_deployments(deployment_filter=f.DeploymentFilter(
            id=f.DeploymentFilterId(any_=dep_ids))) if dep_ids else []
    summaries = {a.flow_run_id: str(a.data or "") for a in artifacts
                 if a.key == "evidence-summary"}
    drifts = {a.flow_run_id: _changed_fields(a.data) for a in artifacts
              if a.key == "evidence-drift"}
    names = {d.id: d.name for d in deployments}
    rows = []
    for r in runs:
        text = summaries.get(r.id, "")
        confidence, cost = _CONFIDENCE.search(text), _COST.search(text)
        tool = (r.parameters or {}).get("tool") or next(
            (t.split(":", 1)[1] for t in r.tags if t.startswith("tool:")), None)
        rows.append({
            "flow_run_id": str(r.id), "name": r.name,
            "state": r.state.type.value if r.state else None,
            "start": (r.start_time or r.expected_start_time),
            "deployment": names.get(r.deployment_id), "tool": tool,
            "confidence": float(confidence.group(1)) if confidence else None,
            "cost_usd": float(cost.group(1)) if cost else None,
            "drift": drifts.get(r.id),  # None: nothing compared; []: compared, no change
        })
    return rows


def runs_table(rows: list[dict[str, Any]]) -> list[str]:
    """Header and one line per run; each column as wide as its longest value, so long run,
    deployment or tool names never push the columns after them out of line."""
    cells = [[
        row["start"].strftime("%Y-%m-%d %H:%M:%S") if row["start"] else "-",
        row["state"] or "-", row["name"] or "-", row["deployment"] or "-", row["tool"] or "-",
        f"{row['confidence']:.3f}" if row["confidence"] is not None else "-",
        f"{row['cost_usd']:.6f}" if row["cost_usd"] is not None else "-",
        row["flow_run_id"],
    ] for row in rows]
    header = ["started (UTC)", "state", "name", "deployment", "tool", "conf", "cost $",
              "flow run id"]
    right = {5, 6}  # numbers
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    return ["  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                      for i, cell in enumerate(line)).rstrip()
            for line in [header, *cells]]


def _changed_fields(data: Any) -> list[str]:
    """Fields marked significant in an evidence-drift table artifact."""
    import json

    rows = json.loads(data) if isinstance(data, str) else data
    fields = [str(r.get("field", "")).split(": ", 1)[0] for r in rows or []
              if isinstance(r, dict) and r.get("significant") == "yes"]
    return list(dict.fromkeys(fields))


def runs(
    limit: Annotated[int, typer.Option(min=1, help="How many runs.")] = 20,
    deployment: Annotated[str | None, typer.Option(help="Only runs of this deployment.")] = None,
    scheduled: Annotated[bool, typer.Option(
        "--scheduled", help="Include runs scheduled for later.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    drift: Annotated[bool, typer.Option(
        "--drift", help="Only runs whose answers drifted from the previous run of the same "
        "analysis (evidence-drift artifact), with the changed fields.")] = False,
) -> None:
    """List recent orchestration runs: state, tool, confidence and cost (from the Prefect API)."""
    import json

    prepare_prefect()
    with cli_errors():
        api_url = require_server()
        rows = asyncio.run(recent_runs(limit, deployment, scheduled))
    if drift:
        rows = [row for row in rows if row["drift"]]
    if as_json:
        for row in rows:
            typer.echo(json.dumps({**row, "start": row["start"] and row["start"].isoformat()}))
        return
    if not rows:
        typer.echo(f"no run with drift among the last {limit} runs" if drift else
                   "no orchestration runs yet: try `steer trigger feasibility-daily --wait`")
        return
    lines = runs_table(rows)
    typer.echo(lines[0])
    for row, line in zip(rows, lines[1:], strict=True):
        typer.echo(line)
        if drift:
            typer.echo(f"{'':<21}drift in: {', '.join(row['drift'])}")
    base = api_url.rstrip("/").removesuffix("/api")
    typer.echo(f"UI: {base}/runs  (a run: {base}/runs/flow-run/<flow run id>)")
