"""One console line per failed replicate; the full failure stays in the Prefect UI.

Prefect logs every task run that finally fails twice at ERROR ("Task run failed with
exception ... Retries are exhausted" with the whole traceback, then "Finished in state
Failed(...)"): a run whose 3 replicates failed printed 3 tracebacks and 6 error lines, on top
of a WARNING per failed attempt from the provider. A filter on the *console* handlers only
keeps the first line of each failure, without the traceback. The API handler (the Prefect UI)
sits on the child loggers and sees each record before it reaches the console, so the UI keeps
everything, and the task run's state message and result keep the exception.

``STEER_DEBUG=1``, or DEBUG logging on ``prefect`` or ``steer_llm_sdk``, shows everything.
"""

from __future__ import annotations

import logging
import os

__all__ = ["OneLineFailures", "install_console_filter"]

_RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")
_HINT = " (set STEER_DEBUG=1 for the traceback)"


def _debug() -> bool:
    return os.environ.get("STEER_DEBUG", "") not in ("", "0") or any(
        logging.getLogger(name).isEnabledFor(logging.DEBUG)
        for name in ("prefect", "steer_llm_sdk"))


class OneLineFailures(logging.Filter):
    """Console filter: task-run failures become one line, without traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_RUN_LOGGERS) or record.levelno < logging.ERROR:
            return True
        if _debug():
            return True
        if record.name.startswith("prefect.task_runs") and str(record.msg).startswith(
                "Finished in state"):
            return False  # Failed/TimedOut: repeats the "Task run failed with" line just logged
        if record.exc_info or record.exc_text:
            # console handlers run last (after the API handler on the child logger)
            record.msg, record.args = record.getMessage() + _HINT, ()
            record.exc_info, record.exc_text = None, None
        return True


_installed: set[int] = set()


def install_console_filter() -> None:
    """Add the filter to Prefect's console handlers (once; cheap to call per run)."""
    try:
        from prefect.logging.handlers import PrefectConsoleHandler
    except ImportError:  # pragma: no cover - Prefect is a dependency
        return
    for handler in logging.getLogger().handlers + logging.getLogger("prefect").handlers:
        if isinstance(handler, PrefectConsoleHandler) and id(handler) not in _installed:
            _installed.add(id(handler))
            handler.addFilter(OneLineFailures())
