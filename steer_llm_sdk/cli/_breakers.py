"""`steer breakers`: the circuit breakers the fleet shares (STEER_BREAKER_URL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from steer_llm_sdk.cli._common import cli_errors


def breakers(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
             ) -> None:
    """Show each provider endpoint's breaker: state, failures, since when open.

    Breakers are shared through Redis when STEER_BREAKER_URL is set (every worker sees the
    same state); otherwise they live inside each process and this command has none to show."""
    with cli_errors():
        from steer_llm_sdk.reliability.breaker_store import get_breaker_store

        store = get_breaker_store()
        rows = store.states() if store is not None else {}
    if as_json:
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if store is None:
        typer.echo("breakers are per process (STEER_BREAKER_URL unset): set "
                   "STEER_BREAKER_URL=redis://host:6379/0 on every worker to share them")
        return
    if not store.available:
        typer.echo(f"breaker store {store.url} unreachable; workers use local state")
        raise typer.Exit(1)
    if not rows:
        typer.echo(f"no breakers in {store.url} yet (prefix {store.prefix})")
        return
    now = datetime.now(UTC).timestamp()
    typer.echo(f"{'endpoint':<40}  {'state':<9}  {'failures':>8}  detail")
    for name, row in sorted(rows.items()):
        detail = ""
        if row["state"] == "open" and row["opened_at"]:
            left = row["opened_at"] + row["reset_timeout_s"] - now
            detail = f"half-open in {left:.0f} s" if left > 0 else "next call is the trial"
        typer.echo(f"{name:<40}  {row['state']:<9}  {row['fail_counter']:>8}  {detail}")
