"""Process environment for the benchmarks: throwaway Prefect homes, a quiet console, a local
``prefect server`` we start and stop ourselves, and peak-RSS sampling.

Nothing here imports Prefect: settings are read from the environment when Prefect is first
imported, so ``prepare_process_env`` must run before any engine import.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL": "WARNING",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL": "WARNING",
}
# Variables that would point a benchmark at the user's own Prefect/OpenAI setup.
SCRUBBED = ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE", "OPENAI_API_KEY",
            "OPENAI_BASE_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")


class BenchHome:
    """One temporary directory holding every PREFECT_HOME the run creates; removed at exit."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="steer-bench-"))

    def sub(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def prepare_process_env(home: Path, extra: dict[str, str] | None = None) -> None:
    """Point this process's Prefect at ``home`` (never ~/.prefect) and quiet its console."""
    for key in SCRUBBED:
        os.environ.pop(key, None)
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["STEER_HOME"] = str(home / "steer")
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.update(extra or {})


def child_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a benchmark subprocess: like ours, with its own PREFECT_HOME."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["PREFECT_HOME"] = str(home)
    env["STEER_HOME"] = str(home / "steer")
    env.update(QUIET_ENV)
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def one_certificate_file(directory: Path) -> Path:
    """A CA file holding one certificate (the first of certifi's bundle).

    Prefect builds every API client with ``ssl.create_default_context(cafile=...)``, loading
    the whole CA bundle (tens of ms of CPU) even when the API URL is plain http. Pointing
    ``PREFECT_API_SSL_CERT_FILE`` at this file makes that cheap. Only for http:// API URLs:
    with https it would make verification fail (it never disables it)."""
    import certifi

    text = Path(certifi.where()).read_text()
    begin = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", begin) + len("-----END CERTIFICATE-----")
    path = directory / "one-ca.pem"
    path.write_text(text[begin:end] + "\n")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect_executable() -> str:
    candidate = Path(sys.executable).with_name("prefect")
    return str(candidate) if candidate.exists() else "prefect"


def _die_with_parent() -> None:
    """Linux: SIGTERM this child when the benchmark dies without cleaning up (e.g. killed)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class LocalPrefectServer:
    """``prefect server start`` on 127.0.0.1:<free port>, started and stopped by us."""

    home: Path
    database_url: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    log_path: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)  # extra env for the server only
    workers: int = 1
    # "prefect": `prefect server start`; "steer-immediate": `python -m
    # steer_llm_sdk.prefect_server` (same app, SQLite transactions BEGIN IMMEDIATE)
    flavour: str = "prefect"

    def command(self) -> list[str]:
        if self.flavour == "steer-immediate":
            return [sys.executable, "-m", "steer_llm_sdk.prefect_server", "--host", "127.0.0.1",
                    "--port", str(self.port), "--log-level", "error", "--lifespan", "on"]
        return [prefect_executable(), "server", "start", "--host", "127.0.0.1",
                "--port", str(self.port), "--no-ui", "--analytics-off",
                *(["--workers", str(self.workers)] if self.workers > 1 else [])]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self, timeout_s: float = 90.0) -> LocalPrefectServer:
        extra = {"PREFECT_SERVER_DATABASE_CONNECTION_URL": self.database_url} \
            if self.database_url else {}
        env = child_env(self.home, {**extra, "PREFECT_UI_ENABLED": "false", **self.settings})
        self.log_path = self.home / "server.log"
        started = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), env=env, preexec_fn=_die_with_parent, stdout=log,
                stderr=subprocess.STDOUT, cwd=str(self.home),
                start_new_session=True,  # its own process group: we stop exactly what we start
            )
        deadline = started + timeout_s
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited early; see {self.log_path}:\n"
                                   + self.log_path.read_text(errors="replace")[-2000:])
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"{self.api_url}/health", timeout=1) as resp:
                if resp.status == 200:
                    self.startup_s = time.perf_counter() - started
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prefect server did not become healthy in {timeout_s:.0f} s")

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process and self.process.poll() is None else []

    def stop(self, timeout_s: float = 15.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        # The group id equals the pid of the process we started (start_new_session=True).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# -- PostgreSQL -----------------------------------------------------------------------------
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


async def create_postgres_database(name: str) -> str | None:
    """A dedicated database for a Postgres-backed server (keeps 'test' clean for others);
    returns its SQLAlchemy URL, or None when PostgreSQL/asyncpg is unavailable."""
    try:
        import asyncpg
    except ImportError:
        return None
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.PostgresError:
        return None
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop_postgres_database(name: str) -> None:
    import asyncpg

    with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# -- memory ---------------------------------------------------------------------------------
def _status_kb(pid: int | str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), \
                    open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(p) for p in fh.read().split()]
    return found


def tree_rss_kb(pid: int, exclude: set[int] | None = None) -> int:
    """Current RSS of ``pid`` and all its descendants (minus ``exclude`` subtrees)."""
    exclude = exclude or set()
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        if current in exclude:
            continue
        total += _status_kb(current, "VmRSS")
        stack += _children(current)
    return total


def machine_busy_s() -> float:
    """CPU seconds all processes on the machine have used so far (from /proc/stat)."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM (Linux: write 5 to clear_refs); False if not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def own_peak_rss_kb() -> int:
    return _status_kb("self", "VmHWM")


class TreeRssSampler:
    """Samples the RSS of a process tree every ``interval_s`` and keeps the peak."""

    def __init__(self, pid: int, interval_s: float = 0.05,
                 exclude: set[int] | None = None) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.exclude = exclude or set()
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pid, self.exclude))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pid, self.exclude))


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    box: list[float] = []
    started = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - started)


def drain_prefect_workers(timeout_s: float = 15.0) -> None:
    """Flush Prefect's log and event workers while the API is still up (call before stopping
    a server we started, or their exit-time flush fails with 'Error logging to API')."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=timeout_s)


BACKENDS = ("embedded", "server", "sqlite-immediate", "postgres")


def flavour_for(backend: str) -> str:
    return "steer-immediate" if backend == "sqlite-immediate" else "prefect"


@contextlib.contextmanager
def prefect_backend(kind: str, home: BenchHome, settings: dict[str, str] | None = None,
                    workers: int = 1) -> Iterator[LocalPrefectServer | None]:
    """Set this process up for ``kind`` (embedded | server | sqlite-immediate | postgres) before
    Prefect is imported; a server we start is stopped (and its database dropped) on exit."""
    import asyncio

    if kind == "embedded":
        yield None
        return
    pg_name = f"steer_bench_{os.getpid()}"
    url = None
    if kind == "postgres":
        url = asyncio.run(create_postgres_database(pg_name))
        if url is None:
            raise RuntimeError("PostgreSQL on 127.0.0.1:5432 (or asyncpg) is not available")
    server = LocalPrefectServer(home.sub(f"server-{kind}"), database_url=url,
                                settings=dict(settings or {}), workers=workers,
                                flavour=flavour_for(kind))
    try:
        server.start()
        os.environ["PREFECT_API_URL"] = server.api_url
        yield server
    finally:
        drain_prefect_workers()
        server.stop()
        if url is not None:
            asyncio.run(drop_postgres_database(pg_name))


class SimulatorProcess:
    """The simulator in its own process (``--simulator process``, the default): a real provider
    is never inside the caller's process. In a thread it shares this process's GIL, so every
    call that releases the GIL (socket sends, ``os.urandom`` for Prefect's ids, ``lstat``)
    waits for the simulator's thread, and the engine makes many more such calls than the
    bare-asyncio baseline; both sides are measured against the same simulator either way."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> SimulatorProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "steer_llm_sdk.testing", "--port", "0"],
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "base_url=" not in line:
            self.__exit__()
            raise RuntimeError(f"simulator process did not start: {line!r}")
        self.base_url = line.strip().split("base_url=", 1)[1]
        return self

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
