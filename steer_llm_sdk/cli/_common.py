"""Shared CLI plumbing: one-line errors, JSON arguments, reuse of a local `steer server`.

Everything here is stdlib + typer so `steer --help` stays fast; Prefect loads inside commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from typing import Any, NoReturn

import typer

# Exit codes: 1 = the analysis ran and failed, 2 = the command could not do what was asked.
EXIT_FAILED_RUN = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: ...`` on one line to stderr and exit: users see the fix, not a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    typer.echo(message, err=True)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn the SDK's own errors (which say what to fix) into one line; other exceptions too,
    unless STEER_DEBUG=1 asks for the traceback."""
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("STEER_DEBUG"):
            traceback.print_exc()
        from steer_llm_sdk.errors import OrchestratorError

        if isinstance(exc, OrchestratorError | ValueError | TypeError | LookupError):
            fail(_one_line(str(exc)))
        fail(_one_line(f"{type(exc).__name__}: {exc}") + "  (STEER_DEBUG=1 shows the traceback)")


def _one_line(text: str, limit: int = 600) -> str:
    """Collapse whitespace: pydantic's ValidationError spreads its useful part over lines."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse_json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        pointer = text[max(exc.pos - 15, 0): exc.pos + 15]
        fail(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
             f"(char {exc.pos}): ...{pointer}...")


def parse_request(text: str) -> dict[str, Any]:
    """JSON when it looks like JSON (starts with '{' or '"'), else plain text as the query."""
    stripped = text.strip()
    if not stripped:
        fail("REQUEST is empty; pass text or a JSON object like '{\"query\": \"...\"}'")
    if stripped[0] in '{["':
        value = parse_json_arg(stripped, "REQUEST")
        if isinstance(value, str):
            return {"query": value}
        if not isinstance(value, dict):
            fail(f"REQUEST must be a JSON object or text, got a JSON {type(value).__name__}")
        return value
    return {"query": text}


def parse_object(text: str | None, what: str) -> dict[str, Any] | None:
    if text is None:
        return None
    value = parse_json_arg(text, what)
    if not isinstance(value, dict):
        fail(f"{what} must be a JSON object, got a JSON {type(value).__name__}")
    return value


def prepare_prefect(*, reuse_server: bool = True) -> None:
    """Call before Prefect is imported: quiet its console, and when PREFECT_API_URL is unset
    but `steer server start` left a healthy server, use it instead of starting an embedded one
    (a 6-13 s cold start per command)."""
    from steer_llm_sdk.quiet import quiet_prefect_console

    quiet_prefect_console()
    if not reuse_server or os.environ.get("PREFECT_API_URL") or "prefect" in sys.modules:
        return
    from steer_llm_sdk.local_server import discovered_api_url

    api_url = discovered_api_url()  # the same lookup scripts make (STEER_DISCOVER_SERVER=0: off)
    if api_url is not None:
        os.environ["PREFECT_API_URL"] = api_url
        note(f"using the local steer server: PREFECT_API_URL={api_url}")


def require_server() -> str:
    """The API URL of a reachable server, or a one-line error naming PREFECT_API_URL."""
    import asyncio

    from steer_llm_sdk.trigger import ServerUnavailableError, ensure_server

    try:
        return asyncio.run(ensure_server())
    except ServerUnavailableError as exc:
        fail(str(exc))
