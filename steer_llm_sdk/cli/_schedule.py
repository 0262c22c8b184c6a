"""`steer schedule create | ls | pause | resume | delete`: recurring analyses of any tool.

Arguments are validated before any server is contacted (bad JSON, an unknown tool, a bad cron
expression): one line naming the field, exit 2.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from steer_llm_sdk.cli._common import (
    cli_errors,
    fail,
    parse_json_arg,
    parse_object,
    prepare_prefect,
    require_server,
)

schedule_app = typer.Typer(
    help="Recurring analyses: a Prefect deployment per schedule, run by `steer serve` or a "
    "work pool's workers.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Schedule (deployment) name.")]


def _echo(info: object, verb: str) -> None:
    pool = getattr(info, "work_pool", None)
    runner = f"work pool {pool}" if pool else "`steer serve`"
    typer.echo(f"{verb} schedule {info.name} ({info.schedule}; "  # type: ignore[attr-defined]
               f"{'paused' if info.paused else 'active'}; run by {runner})")  # type: ignore


def _flag(exc: Exception) -> str:
    """'tool: ...' -> '--tool: ...'; the name is the NAME argument, the rest are options."""
    field = getattr(exc, "field", "")
    return str(exc) if field in ("name", "schedule") else f"--{exc}"


@schedule_app.command("create")
def create(
    name: NameArg,
    tool: Annotated[str, typer.Option(
        help="Tool reference the worker resolves: entry point or 'module:attribute'.")],
    request: Annotated[str, typer.Option(help="Request: JSON object or plain text.")],
    options: Annotated[str | None, typer.Option(help="Tool options as a JSON object.")] = None,
    config: Annotated[str | None, typer.Option(
        help="OrchestrationConfig fields as a JSON object.")] = None,
    cron: Annotated[str | None, typer.Option(help="Cron expression, e.g. '0 6 * * MON'.")
                    ] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between runs.")] = None,
    timezone: Annotated[str, typer.Option(help="Timezone of the schedule.")] = "UTC",
    pool: Annotated[str | None, typer.Option(
        help="Work pool whose workers run it (created as a process pool if missing); "
        "default: `steer serve` runs it.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
) -> None:
    """Create (or replace) a schedule of any analysis.

    Example: steer schedule create churn-weekly --tool my_pkg.tools:churn
    --request '{"query": "..."}' --options '{"k": 5}' --cron '0 6 * * MON'"""
    from steer_llm_sdk.schedules import (
        ScheduleValidationError,
        check_schedule,
        schedule_parameters,
    )

    payload = parse_json_arg(request, "--request") if request.strip()[:1] in '{[' else request
    opts = parse_object(options, "--options")
    fields = parse_object(config, "--config")
    if (cron is None) == (interval is None):
        fail("schedule: give exactly one of --cron EXPR or --interval SECONDS")
    try:  # an unknown tool or a bad field fails before any server is contacted
        schedule_parameters(tool, payload, opts, fields)
        check_schedule(name, cron, interval, timezone)
    except ScheduleValidationError as exc:
        fail(_flag(exc))
    prepare_prefect()
    with cli_errors():
        require_server()
        from steer_llm_sdk.schedules import acreate_schedule

        try:
            info = asyncio.run(acreate_schedule(
                name, tool, payload, opts, fields, cron=cron, interval_s=interval,
                timezone=timezone, work_pool=pool, paused=paused))
        except ScheduleValidationError as exc:
            fail(_flag(exc))
    _echo(info, "created")


@schedule_app.command("ls")
def ls(as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False
       ) -> None:
    """List the schedules: name, tool, schedule, paused, who runs them."""
    prepare_prefect()
    with cli_errors():
        require_server()
        from steer_llm_sdk.schedules import alist_schedules

        infos = asyncio.run(alist_schedules())
    if as_json:
        for info in infos:
            typer.echo(info.model_dump_json())
        return
    if not infos:
        typer.echo("no schedules; create one with `steer schedule create`")
        return
    typer.echo(f"{'name':<24}  {'tool':<28}  {'state':<6}  {'run by':<20}  schedule")
    for info in infos:
        typer.echo(f"{info.name:<24}  {info.tool or '-':<28}  "
                   f"{'paused' if info.paused else 'active':<6}  "
                   f"{info.work_pool or 'steer serve':<20}  {info.schedule}")


def _set_paused(name: str, paused: bool) -> None:
    prepare_prefect()
    with cli_errors():
        require_server()
        from steer_llm_sdk.schedules import aset_schedule_paused

        info = asyncio.run(aset_schedule_paused(name, paused))
    _echo(info, "paused" if paused else "resumed")


@schedule_app.command("pause")
def pause(name: NameArg) -> None:
    """Pause a schedule (no new runs until resumed)."""
    _set_paused(name, True)


@schedule_app.command("resume")
def resume(name: NameArg) -> None:
    """Resume a paused schedule."""
    _set_paused(name, False)


@schedule_app.command("delete")
def delete(name: NameArg) -> None:
    """Delete a schedule (its deployment and not-yet-started runs)."""
    prepare_prefect()
    with cli_errors():
        require_server()
        from steer_llm_sdk.schedules import adelete_schedule

        info = asyncio.run(adelete_schedule(name))
    typer.echo(f"deleted schedule {info.name}")
