"""Commands that run in this process: `steer run`, `steer tools`, `steer simulator`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from steer_llm_sdk.cli._common import (
    EXIT_FAILED_RUN,
    cli_errors,
    fail,
    note,
    parse_object,
    parse_request,
    prepare_prefect,
    require_server,
)

ToolArg = Annotated[str, typer.Argument(
    help="Tool: a registered name, an entry point (see `steer tools`) or 'module:attribute'.")]
RequestArg = Annotated[str, typer.Argument(
    help='The request: a JSON object (\'{"query": "..."}\') or plain text (becomes the query).')]
KOpt = Annotated[int | None, typer.Option(
    "--k", min=2, max=50, help="Replicates for bundle tools.")]
OptionsOpt = Annotated[str | None, typer.Option(
    "--options", help="Tool options as a JSON object, e.g. '{\"early_stop\": false}'.")]
ConfigOpt = Annotated[str | None, typer.Option(
    "--config", help="OrchestrationConfig fields as JSON, e.g. '{\"budget\": {\"cost_usd\": 1}}'.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the OrchestrationOutput as JSON.")]


def tool_options(options: str | None, k: int | None) -> dict[str, Any] | None:
    parsed = parse_object(options, "--options")
    if k is not None:
        parsed = {**(parsed or {}), "k": k}
    return parsed


def _resolve(reference: str) -> Any:
    """Plain Python (no Prefect): an unknown tool fails in milliseconds, listing the known."""
    from steer_tools.registry import get_global_registry
    from steer_tools.resolve import resolve_tool

    return resolve_tool(reference, get_global_registry())


@contextlib.contextmanager
def _simulated_llm() -> Iterator[str]:
    """Point OpenAI-compatible tools at the bundled simulator for the duration of the run."""
    from steer_llm_sdk.testing import SimulatorServer

    saved = {key: os.environ.get(key) for key in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    with SimulatorServer() as sim:
        os.environ["OPENAI_BASE_URL"] = sim.base_url
        os.environ["OPENAI_API_KEY"] = "sk-simulator"
        try:
            yield sim.base_url
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def run(tool: ToolArg, request: RequestArg, k: KOpt = None, options: OptionsOpt = None,
        config: ConfigOpt = None,
        simulator: Annotated[bool, typer.Option(
            "--simulator", help="Start the bundled OpenAI-compatible simulator: an offline run, "
            "no API key needed.")] = False,
        as_json: JsonOpt = False) -> None:
    """Run TOOL on REQUEST now, in this process, as one Prefect flow run; print the report.

    \b
    Example: steer run feasibility '{"query": "Ship v2 in a week"}' --k 5 --simulator
    """
    payload = parse_request(request)
    opts = tool_options(options, k)
    fields = parse_object(config, "--config") or {}
    with cli_errors():
        resolved = _resolve(tool)
        from steer_llm_sdk.config import OrchestrationConfig

        cfg = OrchestrationConfig.model_validate(fields)
        llm = getattr(resolved, "llm", None)
        if not simulator and getattr(llm, "has_credentials", True) is False:
            fail("OPENAI_API_KEY is not set: export it (and OPENAI_BASE_URL for another "
                 "OpenAI-compatible server), or add --simulator for an offline run")
        prepare_prefect()
        from steer_llm_sdk.trigger import configured_api_url

        if configured_api_url():  # a dead server would cost minutes of client retries
            require_server()
        with _simulated_llm() if simulator else contextlib.nullcontext() as sim_url:
            if sim_url:
                note(f"simulator at {sim_url}")
            from steer_llm_sdk.orchestration import Orchestrator

            out = Orchestrator().run_sync(payload, tool, opts, cfg)
            from steer_llm_sdk.quiet import flush_prefect_workers

            flush_prefect_workers()  # before the simulator and the embedded server stop
    if as_json:
        typer.echo(out.model_dump_json(indent=2))
    else:
        from steer_llm_sdk.quiet import ui_url_for
        from steer_llm_sdk.report import format_report

        typer.echo(format_report(out, ui_url=ui_url_for(out.metadata.get("flow_run_id"))))
    if out.status == "failed":
        raise typer.Exit(EXIT_FAILED_RUN)


def tools() -> None:
    """List the tools this installation can run (registered and entry points).

    Entry points of group steer_llm_sdk.tools are what deployed runs can load by name."""
    from importlib.metadata import entry_points

    from steer_tools.registry import get_global_registry
    from steer_tools.resolve import ENTRY_POINT_GROUP

    rows: list[tuple[str, str, str]] = []
    for name, info in get_global_registry().list_tools().items():
        rows.append((name, "registered", info.get("description") or ""))
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            description = _resolve(ep.name).description or ""
        except Exception as exc:  # show the broken one, keep listing the others
            description = f"(cannot load: {type(exc).__name__}: {exc})"
        rows.append((ep.name, f"entry point {ep.value}", description))
    if not rows:
        typer.echo("no tools: register one with SteerLLMClient().register_tool(...) or add an "
                   f"entry point in group {ENTRY_POINT_GROUP!r}")
        return
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    for name, source, description in rows:
        typer.echo(f"{name:<{width[0]}}  {source:<{width[1]}}  {description}".rstrip())


def simulator(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 8765,
    latency: Annotated[float, typer.Option(help="Default latency per call, seconds.")] = 0.0,
) -> None:
    """Run the OpenAI-compatible LLM simulator until Ctrl-C; point OPENAI_BASE_URL at it."""
    from steer_llm_sdk.testing import run_simulator

    with cli_errors():
        run_simulator(host, port, default_latency_s=latency)
