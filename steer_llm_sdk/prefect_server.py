"""Run Prefect's API server with SQLite write transactions that wait instead of failing.

Prefect's SQLite layer opens most write transactions as ``BEGIN DEFERRED``: a transaction that
reads, then writes while the server's event/task-run recorders hold the write lock, fails at
once with "database is locked" (SQLite cannot wait on a read->write upgrade). The API answers
503 and the Prefect client sleeps a fixed ~2 s before retrying (PrefectHQ/prefect#18934). That
sleep was the 2-3 s "floor" under back-to-back orchestrations and the 13x slowdown of 20
concurrent ones (docs/performance.md).

Starting every explicit transaction with ``BEGIN IMMEDIATE`` takes the write lock up front, so
a busy writer simply waits on SQLite's busy_timeout (milliseconds here) and never sees an
upgrade failure. Reads outside transactions are untouched. The patch applies only inside this
server process, which the SDK starts in place of Prefect's ephemeral server (same uvicorn
command, same app factory) and which ``steer server start`` runs.

    python -m steer_llm_sdk.prefect_server --host 127.0.0.1 --port 4200   # uvicorn args
    python -m steer_llm_sdk.prefect_server server start --port 4200      # prefect's CLI
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

APP_FACTORY = "prefect.server.api.server:create_app"


def patch_sqlite_begin_immediate() -> bool:
    """Make Prefect's SQLite transactions BEGIN IMMEDIATE; False if Prefect's internals moved
    (then the server runs unpatched: slower under contention, never wrong)."""
    try:
        from prefect.server.database import configurations as cfg
    except ImportError:
        return False
    config_cls = getattr(cfg, "AioSqliteConfiguration", None)
    begin_mode = getattr(cfg, "SQLITE_BEGIN_MODE", None)
    if config_cls is None or begin_mode is None or getattr(config_cls, "_steer_patched", False):
        return bool(config_cls is not None and getattr(config_cls, "_steer_patched", False))

    @asynccontextmanager
    async def begin_transaction(self: Any, session: Any,
                                with_for_update: bool = False) -> AsyncGenerator[Any, None]:
        token = begin_mode.set("IMMEDIATE")
        try:
            async with session.begin() as transaction:
                yield transaction
        finally:
            begin_mode.reset(token)

    config_cls.begin_transaction = begin_transaction
    config_cls._steer_patched = True
    return True


def main(argv: list[str] | None = None) -> None:
    """After the SQLite patch: ``server start ...`` runs Prefect's own CLI (UI, services; one
    worker process, so the patch holds); anything else is uvicorn's CLI with Prefect's app."""
    patch_sqlite_begin_immediate()
    from steer_llm_sdk.parent_watch import exit_with_parent

    exit_with_parent()  # an embedded server (STEER_PARENT_PID set) ends with its process
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] == ["server", "start"]:
        from prefect.cli import app

        sys.argv = ["prefect", *args]  # Prefect's CLI entry point reads sys.argv
        app()
        return
    import uvicorn.main

    if APP_FACTORY not in args:
        args = ["--factory", APP_FACTORY, *args]
    uvicorn.main.main(args=args, prog_name="steer-prefect-server")


if __name__ == "__main__":
    main()
