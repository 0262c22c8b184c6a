"""Console hygiene for CLI entry points: Prefect's embedded server logs shutdown races as
tracebacks; a user running `make demo` should see the analysis, not server internals.
Only sets variables the user has not set, and must run before Prefect is imported."""

from __future__ import annotations

import atexit
import gc
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
    if os.environ.get("STEER_CLI_GC_TUNING", "1") != "0":
        _tune_gc_for_short_process()


_GC_TUNED = False


def _tune_gc_for_short_process() -> None:
    """A one-shot command allocates ~200k long-lived objects (Prefect, openai, pydantic
    models) and frees them at exit. Fewer collections while importing (cyclic GC: 0.23-0.30 s
    of CPU -> 0.07 s) and no collection of the whole module graph at interpreter shutdown
    (0.35-0.5 s -> ~0.03 s). Prefect's event/log workers drain before atexit handlers run, so
    nothing is lost; only ``__del__`` of objects still in reference cycles at exit is skipped,
    which Python never guarantees at shutdown anyway."""
    global _GC_TUNED
    if not _GC_TUNED:
        _GC_TUNED = True
        gc.set_threshold(50_000, 20, 10)
        atexit.register(gc.freeze)


def ui_url_for(flow_run_id: str | None) -> str | None:
    """The UI link when a Prefect server (not the embedded one) is configured."""
    api = os.environ.get("PREFECT_API_URL")
    if not api or not flow_run_id:
        return None
    base = api.rstrip("/").removesuffix("/api")
    return f"{base}/runs/flow-run/{flow_run_id}"
