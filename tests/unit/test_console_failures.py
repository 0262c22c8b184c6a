"""Item 7 of issue 10: one console line per failed replicate; tracebacks only on request.

The filter sits on Prefect's console handler only (steer_llm_sdk/console.py); records from
Prefect's run loggers are built here exactly as the task engine logs them."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from steer_llm_sdk.console import OneLineFailures


def _console() -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(OneLineFailures())
    return handler, stream


def _failure_records() -> list[logging.LogRecord]:
    try:
        raise RuntimeError("provider said 503")
    except RuntimeError:
        exc_info = sys.exc_info()
    failed = logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1,
                               "Task run failed with exception: %r - Retries are exhausted",
                               (exc_info[1],), exc_info)
    final = logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 2,
                              "Finished in state Failed('provider said 503')", (), None)
    info = logging.LogRecord("prefect.task_runs", logging.INFO, __file__, 3,
                             "Finished in state Completed()", (), None)
    return [failed, final, info]


def test_a_failed_replicate_is_one_console_line(monkeypatch):
    monkeypatch.delenv("STEER_DEBUG", raising=False)
    handler, stream = _console()
    for record in _failure_records():
        handler.handle(record)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # the failure (one line, no traceback) and the INFO line
    assert lines[0].startswith("ERROR Task run failed with exception: RuntimeError")
    assert "STEER_DEBUG=1" in lines[0] and "Traceback" not in stream.getvalue()


@pytest.mark.parametrize("debug", ["env", "logging"])
def test_debug_shows_the_full_traceback(monkeypatch, debug):
    logger = logging.getLogger("steer_llm_sdk")
    previous = logger.level
    if debug == "env":
        monkeypatch.setenv("STEER_DEBUG", "1")
    else:
        monkeypatch.delenv("STEER_DEBUG", raising=False)
        logger.setLevel(logging.DEBUG)
    try:
        handler, stream = _console()
        for record in _failure_records():
            handler.handle(record)
    finally:
        logger.setLevel(previous)
    text = stream.getvalue()
    assert "Traceback" in text and "Finished in state Failed" in text


def test_other_loggers_are_untouched(monkeypatch):
    monkeypatch.delenv("STEER_DEBUG", raising=False)
    handler, stream = _console()
    try:
        raise ValueError("user code")
    except ValueError:
        record = logging.LogRecord("myapp", logging.ERROR, __file__, 1, "boom", (),
                                   sys.exc_info())
    handler.handle(record)
    assert "Traceback" in stream.getvalue()
