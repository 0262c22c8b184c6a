"""`steer`: run analyses, serve and trigger deployments, inspect runs, manage a local server.

    steer run feasibility '{"query": "..."}' --k 5 --simulator   # offline, in this process
    steer server start                                            # Prefect UI + API on 127.0.0.1
    steer serve                                                   # scheduled deployments
    steer trigger feasibility-daily --wait                        # a run through the API
    steer runs                                                    # recent runs, confidence, cost

Commands import Prefect lazily (inside their bodies) so `steer --help` and `steer tools` answer
in a fraction of a second; errors are one line (`STEER_DEBUG=1` shows tracebacks).
"""

from __future__ import annotations

from typing import Annotated

import typer

from steer_llm_sdk.cli import _breakers, _local, _remote
from steer_llm_sdk.cli._common import cli_errors, fail

app = typer.Typer(
    name="steer",
    help="LLM analyses as observable, schedulable Prefect workflows with evidence bundles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # click's plain help: flags read as flags (rich help labels them "<bool>", --help included)
    # and `steer --help` does not import rich
    rich_markup_mode=None,
)
server_app = typer.Typer(
    help="A local Prefect server (UI + API) in the background, shared by later commands.",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")
from steer_llm_sdk.cli._limits import limits_app  # noqa: E402
from steer_llm_sdk.cli._schedule import schedule_app  # noqa: E402

app.add_typer(schedule_app, name="schedule")
app.add_typer(limits_app, name="limits")

app.command("run")(_local.run)
app.command("tools")(_local.tools)
app.command("simulator")(_local.simulator)
app.command("serve")(_remote.serve)
app.command("trigger")(_remote.trigger)
app.command("runs")(_remote.runs)
app.command("breakers")(_breakers.breakers)


def _print_urls(state: dict) -> None:
    typer.echo(f"UI:  {state['url']}")
    typer.echo(f"export PREFECT_API_URL={state['api_url']}")
    typer.echo("(for other tools: steer commands and Python scripts find this server without it)")


@server_app.command("start")
def server_start(
    port: Annotated[int | None, typer.Option(
        help="Port (default 4200, or a free one if 4200 is taken; 0 = any free port).")] = None,
    host: Annotated[str, typer.Option(help="Interface; keep 127.0.0.1 unless you "
                                      "add authentication in front.")] = "127.0.0.1",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for /api/health.")] = 90.0,
) -> None:
    """Start `prefect server start` in the background (or reuse the running one)."""
    from steer_llm_sdk.cli._server import ServerStartError, log_file, start_server

    with cli_errors():
        try:
            state = start_server(host, port, timeout)
        except ServerStartError as exc:
            fail(str(exc))
    if state.get("reused"):
        typer.echo(f"Prefect server already running (pid {state['pid']})")
    else:
        typer.echo(f"Prefect server started (pid {state['pid']}) in {state['startup_s']} s; "
                   f"log: {log_file()}")
    _print_urls(state)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the background server started by `steer server start`."""
    from steer_llm_sdk.cli._server import stop_server

    pid = stop_server()
    typer.echo(f"stopped Prefect server (pid {pid})" if pid else "no steer server running")


@server_app.command("status")
def server_status() -> None:
    """Say whether the background server runs and answers, and which URL to use."""
    from steer_llm_sdk.cli._server import healthy, read_state

    state = read_state()
    if state is None:
        typer.echo("no steer server running; start one with `steer server start`")
        raise typer.Exit(1)
    ok = healthy(state["api_url"])
    typer.echo(f"Prefect server pid {state['pid']}: {'healthy' if ok else 'not answering'}")
    _print_urls(state)
    if not ok:
        raise typer.Exit(1)


def main() -> None:
    app()


__all__ = ["app", "main"]
