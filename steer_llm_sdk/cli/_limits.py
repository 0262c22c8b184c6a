"""`steer limits set | ls | delete`: provider rate limits shared by the fleet (Prefect global
concurrency limits, also on the UI's Concurrency page)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from steer_llm_sdk.cli._common import cli_errors, fail, prepare_prefect, require_server

limits_app = typer.Typer(
    help="Provider rate limits (requests per minute, requests in flight) for every worker.",
    no_args_is_help=True,
)

ProviderArg = Annotated[str, typer.Argument(
    help="Provider endpoint as breakers name it: 'openai', or 'openai@host:port' for another "
    "base URL (see `steer breakers`).")]
ModelOpt = Annotated[str | None, typer.Option(help="Only this model of the provider.")]


@limits_app.command("set")
def set_limit(
    provider: ProviderArg,
    rpm: Annotated[int | None, typer.Option(min=0, help="Requests per minute (0 removes).")
                   ] = None,
    concurrency: Annotated[int | None, typer.Option(
        min=0, help="Requests in flight at once (0 removes).")] = None,
    model: ModelOpt = None,
) -> None:
    """Set a provider's limits, e.g. `steer limits set openai --rpm 500 --concurrency 20`."""
    if rpm is None and concurrency is None:
        fail("give --rpm N and/or --concurrency N (0 removes that limit)")
    from steer_llm_sdk.reliability.rate_limits import limit_names

    with cli_errors():
        limit_names(provider, model)  # checks the characters before contacting a server
    prepare_prefect()
    with cli_errors():
        require_server()
        from steer_llm_sdk.reliability.rate_limits import aset_provider_limit

        limit = asyncio.run(aset_provider_limit(provider, rpm=rpm, concurrency=concurrency,
                                                model=model))
    typer.echo(_line(limit))


def _line(limit: object) -> str:
    who = limit.provider + (f" model {limit.model}" if limit.model else "")  # type: ignore
    rpm = f"{limit.rpm:g}/min" if limit.rpm is not None else "-"  # type: ignore
    conc = str(limit.concurrency) if limit.concurrency is not None else "-"  # type: ignore
    return f"{who:<40}  rpm {rpm:<12}  concurrency {conc}"


@limits_app.command("ls")
def ls() -> None:
    """List the provider limits on the server."""
    prepare_prefect()
    with cli_errors():
        require_server()
        from steer_llm_sdk.reliability.rate_limits import alist_provider_limits

        limits = asyncio.run(alist_provider_limits())
    if not limits:
        typer.echo("no provider limits; calls are not limited (`steer limits set` adds one)")
    for limit in limits:
        typer.echo(_line(limit))


@limits_app.command("delete")
def delete(provider: ProviderArg, model: ModelOpt = None) -> None:
    """Remove a provider's limits."""
    prepare_prefect()
    with cli_errors():
        require_server()
        from steer_llm_sdk.reliability.rate_limits import adelete_provider_limit

        asyncio.run(adelete_provider_limit(provider, model))
    typer.echo(f"removed the limits of {provider}" + (f" model {model}" if model else ""))
