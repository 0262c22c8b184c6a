"""The cold-start shortcuts (docs/performance.md, item 3) change how, not what."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from pydantic import BaseModel
from steer_llm_sdk.flows.orchestrate import in_process_flow, orchestrate


def _python(code: str, **env: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120, cwd=os.getcwd())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


class Window(BaseModel):
    start: dt.date


@pytest.mark.parametrize("parameters", [
    {"request": {"query": "q", "n": [1, 2.5, None, True]}, "tool": "t", "tool_options": {},
     "config": {"trace_id": "x", "budget": None}, "session_id": None},
    {"request": {"when": dt.date(2026, 1, 2), "window": Window(start=dt.date(2026, 3, 4))},
     "tool": None, "tool_options": {"ids": (1, 2)}, "config": {1: "int key"},
     "session_id": "s"},
])
def test_in_process_parameters_serialise_exactly_like_prefect(parameters):
    assert in_process_flow().serialize_parameters(parameters) == \
        orchestrate.serialize_parameters(parameters)


def test_pybreaker_is_imported_without_redis_and_redis_still_imports():
    pytest.importorskip("redis")
    out = _python("import sys; import steer_llm_sdk.reliability.breakers as b; "
                  "print('redis' in sys.modules, b.pybreaker.__name__); import redis; "
                  "print(redis.__name__)")
    assert out.splitlines() == ["False pybreaker", "redis"]


def test_gc_tuning_applies_to_cli_processes_only_and_can_be_turned_off():
    code = ("import gc; before = gc.get_threshold(); "
            "from steer_llm_sdk.quiet import quiet_prefect_console; quiet_prefect_console(); "
            "print(before != gc.get_threshold(), gc.get_threshold()[0])")
    assert _python(code) == "True 50000"
    assert _python(code, STEER_CLI_GC_TUNING="0").startswith("False")
    assert _python("import gc, steer_llm_sdk.orchestration; print(gc.get_threshold()[0])") \
        == "700"  # importing the library leaves the interpreter alone


def test_http_ca_override_changes_only_the_ca_file():
    from prefect.context import SettingsContext
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from steer_llm_sdk.api_tls import fast_http_api_clients

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:1/api"}):
        base = SettingsContext.get().settings
        with fast_http_api_clients():
            derived = SettingsContext.get().settings
    assert derived.api.ssl_cert_file and derived.api.ssl_cert_file.endswith("http-api-ca.pem")
    expected = base.model_dump()
    expected["api"]["ssl_cert_file"] = derived.api.ssl_cert_file
    assert derived.model_dump() == expected
    with temporary_settings({PREFECT_API_URL: "https://example.invalid/api"}):
        base = SettingsContext.get().settings
        with fast_http_api_clients():
            assert SettingsContext.get().settings is base  # https: TLS settings untouched
