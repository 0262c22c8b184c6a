"""Test-wide isolation: Prefect and the SDK get throwaway homes before anything imports them,
so no state leaks into ~/.prefect or ~/.steer, and no network is needed."""

from __future__ import annotations

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="steer-tests-")
os.environ["PREFECT_HOME"] = os.path.join(_HOME, "prefect")
os.environ["STEER_HOME"] = os.path.join(_HOME, "steer")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("OPENAI_BASE_URL", None)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_backend():
    """One Prefect test harness (temporary SQLite server) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    from steer_llm_sdk.ephemeral import use_patched_ephemeral_server

    use_patched_ephemeral_server()  # the harness's server gets the same SQLite fix as users'
    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def steer_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STEER_HOME", str(tmp_path / "steer"))
    return tmp_path / "steer"


pytest_plugins = ["steer_llm_sdk.testing.pytest_plugin"]


@pytest.fixture
def fresh_breakers():
    """Breakers are process-wide by design; tests that trip them start from a clean slate."""
    from steer_llm_sdk.reliability.breakers import get_breaker_registry

    registry = get_breaker_registry()
    registry.clear()
    yield registry
    registry.clear()
