"""Console hygiene for CLI entry points: Prefect's embedded server logs shutdown races as
tracebacks; a user running `make demo` should see the analysis, not server internals.
Only sets variables the user has not set, and must run before Prefect is imported."""

from __future__ import annotations

import os

_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL": "WARNING",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL": "WARNING",
}


def quiet_prefect_console() -> None:
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)


def ui_url_for(flow_run_id: str | None) -> str | None:
    """The UI link when a Prefect server (not the embedded one) is configured."""
    api = os.environ.get("PREFECT_API_URL")
    if not api or not flow_run_id:
        return None
    base = api.rstrip("/").removesuffix("/api")
    return f"{base}/runs/flow-run/{flow_run_id}"
