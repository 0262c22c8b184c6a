"""Every patch of a Prefect internal degrades to Prefect's own behaviour, never breaks a run
(steer_llm_sdk/prefect_patches.py; docs/architecture.md, "Prefect internals"). Each guard is
shown taking its fallback when the internal is missing or changed, with one DEBUG line, and a
real orchestration with every patch switched off succeeds."""

from __future__ import annotations

import inspect
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from prefect.client.orchestration import get_client

from steer_llm_sdk import prefect_patches
from steer_llm_sdk.orchestration import BundleTool, OrchestrationConfig, Orchestrator, ToolRegistry

LOGGER = "steer_llm_sdk.prefect_patches"


class ClientSpy(BundleTool):
    """Records the Prefect client its replicate task runs see (the flow engine's)."""

    name = "patch-spy"

    def __init__(self) -> None:
        self.clients: list[object] = []

    async def run_replicate(self, request, seed, context):
        self.clients.append(get_client())
        return {"answer": request["query"].upper()}


def run_once(tool: ClientSpy, query: str = "q"):
    registry = ToolRegistry()
    registry.register_tool(tool)
    cfg = OrchestrationConfig(eager_replicates=False)  # get_client() inside task runs
    return Orchestrator(registry).run_sync(query, tool.name, {"k": 2, "early_stop": False}, cfg)


@pytest.fixture
def off_log(monkeypatch, caplog):
    """A fresh record of disabled optimisations; returns the DEBUG lines logged about them."""
    monkeypatch.setattr(prefect_patches, "_OFF", {})
    caplog.set_level(logging.DEBUG, logger=LOGGER)

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == LOGGER]

    return lines


# --- SQLite BEGIN IMMEDIATE (steer_llm_sdk/prefect_server.py) -----------------------------

async def _second_writer_can_begin(config_cls, path) -> bool:
    """Whether another connection can start a write transaction while a transaction opened
    through ``config_cls.begin_transaction`` has run its first (read-only) statement."""
    import sqlalchemy

    config = config_cls(connection_url=f"sqlite+aiosqlite:///{path}")
    engine = await config.engine()
    try:
        session = await config.session(engine)
        async with session, config.begin_transaction(session):
            await session.execute(sqlalchemy.text("SELECT 1"))
            other = sqlite3.connect(path, timeout=0)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.rollback()
                return True
            except sqlite3.OperationalError as exc:
                assert "locked" in str(exc)
                return False
            finally:
                other.close()
    finally:
        await engine.dispose()


async def test_sqlite_patch_wraps_prefects_own_begin_transaction(tmp_path, off_log):
    """Through Prefect's own begin_transaction, a patched transaction takes SQLite's write
    lock at its first statement (BEGIN IMMEDIATE); Prefect's default (DEFERRED) does not."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    from steer_llm_sdk.prefect_server import patch_sqlite_begin_immediate

    class Probe(AioSqliteConfiguration):  # a throwaway subclass: Prefect's class is untouched
        pass

    original = Probe.begin_transaction
    assert patch_sqlite_begin_immediate(Probe)
    assert Probe.begin_transaction.__wrapped__ is original
    assert AioSqliteConfiguration.begin_transaction is original
    assert await _second_writer_can_begin(AioSqliteConfiguration, tmp_path / "plain.db")
    assert not await _second_writer_can_begin(Probe, tmp_path / "patched.db")
    assert off_log() == []


def test_sqlite_patch_leaves_a_changed_begin_transaction_alone(off_log):
    from prefect.server.database.configurations import AioSqliteConfiguration

    from steer_llm_sdk.prefect_server import NAME, patch_sqlite_begin_immediate

    class Changed(AioSqliteConfiguration):
        def begin_transaction(self, session):  # a future Prefect without with_for_update
            return super().begin_transaction(session)

    before = Changed.begin_transaction
    assert patch_sqlite_begin_immediate(Changed) is False
    assert patch_sqlite_begin_immediate(Changed) is False
    assert Changed.begin_transaction is before
    assert len(off_log()) == 1 and NAME in off_log()[0] and "with_for_update" in off_log()[0]


# --- the embedded server's launch command (steer_llm_sdk/ephemeral.py) ----------------------

class _Recorder:
    def __init__(self) -> None:
        self.args: list[list[str]] = []

    def Popen(self, args, *rest, **kwargs):  # noqa: N802
        self.args.append(list(args))
        return "launched"


def test_ephemeral_patch_rewrites_only_the_module_of_prefects_own_command(monkeypatch, off_log):
    import prefect.server.api.server as server

    from steer_llm_sdk.ephemeral import SERVER_MODULE, use_patched_ephemeral_server

    class Launcher(server.SubprocessASGIServer):  # Prefect's own method, even when the
        _run_uvicorn_command = inspect.unwrap(  # session's harness patched the real class
            server.SubprocessASGIServer._run_uvicorn_command)

    original = Launcher._run_uvicorn_command
    assert use_patched_ephemeral_server(Launcher)
    recorder = _Recorder()
    monkeypatch.setattr(server, "subprocess", recorder)
    instance = object.__new__(Launcher)  # not registered as Prefect's server for any port
    instance.port = 1
    assert Launcher._run_uvicorn_command(instance) == "launched"
    recorder.args.clear()
    original(instance)  # Prefect's own command, for comparison
    prefects = recorder.args[0]
    assert prefects[1:3] == ["-m", "uvicorn"]
    Launcher._run_uvicorn_command(instance)
    assert recorder.args[1] == [prefects[0], "-m", SERVER_MODULE, *prefects[3:]]
    assert server.subprocess is recorder  # the swap lasts one call
    assert use_patched_ephemeral_server(Launcher)  # a second call does not wrap it twice
    Launcher._run_uvicorn_command(instance)
    assert recorder.args[2] == recorder.args[1]
    assert off_log() == []


def test_ephemeral_patch_runs_an_unexpected_command_unchanged(monkeypatch, off_log):
    from steer_llm_sdk.ephemeral import NAME, use_patched_ephemeral_server

    recorder = _Recorder()
    monkeypatch.setattr(sys.modules[__name__], "subprocess", recorder)

    class ChangedServer:  # a future Prefect launching something else from this module
        def _run_uvicorn_command(self):
            return subprocess.Popen([sys.executable, "-m", "hypercorn", "app:create"])

    assert use_patched_ephemeral_server(ChangedServer)
    ChangedServer()._run_uvicorn_command()
    assert recorder.args == [[sys.executable, "-m", "hypercorn", "app:create"]]

    class NoLauncher:  # a future Prefect without the method
        pass

    assert use_patched_ephemeral_server(NoLauncher) is False
    assert len(off_log()) == 1 and NAME in off_log()[0]  # one line per optimisation


# --- in-process runs on the session harness -------------------------------------------------

@pytest.mark.usefixtures("prefect_backend")
def test_shared_client_without_the_once_check_uses_the_per_call_check(monkeypatch, off_log):
    from prefect.client.orchestration import PrefectClient

    calls: list[str] = []
    per_call = PrefectClient.raise_for_api_version_mismatch

    async def counted(self):
        calls.append("check")
        return await per_call(self)

    monkeypatch.delattr(PrefectClient, "raise_for_api_version_mismatch_once")
    monkeypatch.setattr(PrefectClient, "raise_for_api_version_mismatch", counted)
    tool = ClientSpy()
    assert run_once(tool).status == "succeeded"
    assert len({id(c) for c in tool.clients}) == 1 and calls  # still shared, still checked
    assert off_log() == []


@pytest.mark.usefixtures("prefect_backend")
def test_shared_client_falls_back_to_prefects_clients_when_its_internals_are_gone(
        monkeypatch, off_log):
    from prefect.client.orchestration import PrefectClient

    from steer_llm_sdk import shared_api_client

    opened: list[object] = []
    real_aenter = PrefectClient.__aenter__

    async def counted(self):
        opened.append(self)
        return await real_aenter(self)

    monkeypatch.setattr(shared_api_client, "_UNSUPPORTED", [])
    # a future Prefect whose version check has another name
    monkeypatch.setattr(shared_api_client, "VERSION_CHECKS", ("check_server_api_version",))
    monkeypatch.setattr(PrefectClient, "__aenter__", counted)
    first = run_once(ClientSpy(), "a")
    assert first.status == "succeeded"
    probes = len(opened)  # the shared client tried once, then Prefect's own for the run
    second = run_once(ClientSpy(), "b")
    assert second.status == "succeeded"
    assert len(opened) - probes >= 1  # Prefect's own client per flow run, no second probe
    assert len(off_log()) == 1 and shared_api_client.NAME in off_log()[0]
    assert shared_api_client._UNSUPPORTED  # decided once: later runs skip the probe
    assert "check_server_api_version" in off_log()[0]


@pytest.mark.usefixtures("prefect_backend")
def test_fast_http_clients_keep_prefects_settings_when_the_field_moved(monkeypatch, off_log):
    from prefect.context import SettingsContext

    from steer_llm_sdk import api_tls

    monkeypatch.setattr(api_tls, "CA_SETTING", "ssl_ca_bundle_of_a_future_prefect")
    base = SettingsContext.get().settings
    with api_tls.fast_http_api_clients():
        assert SettingsContext.get().settings is base
    assert run_once(ClientSpy()).status == "succeeded"
    assert len(off_log()) == 1 and api_tls.NAME in off_log()[0]


@pytest.mark.usefixtures("prefect_backend")
def test_serialize_shortcut_stands_down_when_prefects_method_changes(monkeypatch, off_log):
    from prefect import Flow
    from steer_llm_sdk.flows import orchestrate as module

    original = Flow.serialize_parameters

    def changed(self, parameters, *, redact=False):  # a future Prefect's new signature
        return original(self, parameters)

    monkeypatch.setattr(Flow, "serialize_parameters", changed)
    monkeypatch.setattr(module, "_IN_PROCESS", {})
    run_flow = module.in_process_flow()
    assert "serialize_parameters" not in vars(run_flow)  # Prefect's own method runs
    assert run_once(ClientSpy()).status == "succeeded"
    assert len(off_log()) == 1 and "fast-serialize-parameters" in off_log()[0]


# --- everything off, in a fresh process with Prefect's own embedded server -----------------

ALL_OFF = textwrap.dedent("""
    import logging, sys
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s %(message)s")
    logging.getLogger("steer_llm_sdk.prefect_patches").setLevel(logging.DEBUG)
    from steer_llm_sdk.orchestration import BundleTool, Orchestrator, ToolRegistry
    from steer_llm_sdk.prefect_patches import disabled_patches

    class Echo(BundleTool):
        name = "echo"
        async def run_replicate(self, request, seed, context):
            return {"answer": request["query"].upper()}

    registry = ToolRegistry()
    registry.register_tool(Echo())
    for query in ("first", "second"):
        out = Orchestrator(registry).run_sync(query, "echo", {"k": 2})
        print("RESULT", out.status, out.content["replicates"][0]["data"]["answer"])
    import prefect.server.api.server as server
    print("WRAPPED", hasattr(server.SubprocessASGIServer._run_uvicorn_command, "__wrapped__"))
    print("OFF", ",".join(sorted(disabled_patches())))
""")


@pytest.mark.timeout(240)  # a fresh embedded server: ~13 s idle, far more on a busy machine
def test_a_real_orchestration_passes_with_every_prefect_patch_off(tmp_path):
    env = {**os.environ, "STEER_PREFECT_PATCHES": "0", "PREFECT_HOME": str(tmp_path / "p"),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
           "STEER_HOME": str(tmp_path / "s")}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run([sys.executable, "-c", ALL_OFF], capture_output=True, text=True,
                          env=env, timeout=180, cwd=os.getcwd())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RESULT succeeded FIRST" in proc.stdout and "RESULT succeeded SECOND" in proc.stdout
    assert "WRAPPED False" in proc.stdout  # Prefect's own server command ran
    off = proc.stdout.split("OFF ", 1)[1].split()[0].split(",")
    assert off == sorted(["ephemeral-server-sqlite-immediate", "fast-http-api-clients",
                          "fast-serialize-parameters", "shared-api-client"])
    lines = [line for line in proc.stderr.splitlines() if "Prefect optimisation" in line]
    assert len(lines) == 4 and all("STEER_PREFECT_PATCHES=0" in line for line in lines)
