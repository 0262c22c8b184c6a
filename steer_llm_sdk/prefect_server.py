"""Run Prefect's API server with SQLite write transactions that wait instead of failing.

Prefect's SQLite layer opens most write transactions as ``BEGIN DEFERRED``: a transaction that
reads, then writes while the server's event/task-run recorders hold the write lock, fails at
once with "database is locked" (SQLite cannot wait on a read->write upgrade). The API answers
503 and the Prefect client sleeps a fixed ~2 s before retrying (PrefectHQ/prefect#18934). That
sleep was the 2-3 s "floor" under back-to-back orchestrations and the 13x slowdown of 20
concurrent ones (docs/performance.md).

Starting every explicit transaction with ``BEGIN IMMEDIATE`` takes the write lock up front, so
a busy writer simply waits on SQLite's busy_timeout (milliseconds here) and never sees an
upgrade failure. Reads outside transactions are untouched. The patch wraps Prefect's own
``begin_transaction`` (asking it for ``with_for_update=True``), so upstream changes there are
kept; if that method is not shaped as expected, the server runs Prefect's unchanged. The
patch applies only inside this server process, which the SDK starts in place of Prefect's
ephemeral server (same uvicorn command, same app factory) and which ``steer server start``
runs.

    python -m steer_llm_sdk.prefect_server --host 127.0.0.1 --port 4200   # uvicorn args
    python -m steer_llm_sdk.prefect_server server start --port 4200      # prefect's CLI
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from steer_llm_sdk.prefect_patches import allowed, patch_off

APP_FACTORY = "prefect.server.api.server:create_app"


NAME = "sqlite-begin-immediate"


def patch_sqlite_begin_immediate(config_cls: Any = None) -> bool:
    """Make Prefect's SQLite transactions BEGIN IMMEDIATE; False (and one DEBUG line) if
    Prefect's internals moved: then the server runs unpatched, slower under contention, never
    wrong. ``config_cls`` is for tests; by default Prefect's ``AioSqliteConfiguration``.

    Prefect's own ``begin_transaction(session, with_for_update)`` already opens ``BEGIN
    IMMEDIATE`` when ``with_for_update`` is true; the wrapper asks for that on every call and
    leaves the rest (and any upstream change to it) to Prefect."""
    if not allowed(NAME):
        return False
    if config_cls is None:
        try:
            from prefect.server.database import configurations as cfg
        except ImportError as exc:
            patch_off(NAME, f"cannot import prefect.server.database.configurations: {exc}")
            return False
        config_cls = getattr(cfg, "AioSqliteConfiguration", None)
        if getattr(cfg, "SQLITE_BEGIN_MODE", None) is None:
            patch_off(NAME, "prefect.server.database.configurations.SQLITE_BEGIN_MODE is gone")
            return False
    if config_cls is None:
        patch_off(NAME, "AioSqliteConfiguration is gone")
        return False
    if vars(config_cls).get("_steer_patched", False):
        return True
    original = getattr(config_cls, "begin_transaction", None)
    try:
        params = list(inspect.signature(original).parameters)
    except (TypeError, ValueError):
        params = []
    if params[:3] != ["self", "session", "with_for_update"]:
        patch_off(NAME, "AioSqliteConfiguration.begin_transaction(self, session, "
                        f"with_for_update) has changed: {params}")
        return False

    def begin_transaction(self: Any, session: Any, with_for_update: bool = False) -> Any:
        return original(self, session, with_for_update=True)

    begin_transaction.__wrapped__ = original  # type: ignore[attr-defined]
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
