"""``make bench``: how much the engine adds to the provider's latency, in one run.

    .venv/bin/python -m benchmarks.run [--reps 5] [--backend embedded|server|postgres]
                                       [--prototype stable-task-tags] [--set KEY=VALUE]
                                       [--only 1 --only 3] [--trace] [--strict]

1. orchestration wall time vs a bare-asyncio baseline (same K calls, same openai client)
2. engine overhead per replicate, K=10 and K=50
3. cold start of one orchestration in a fresh process (embedded server / server already up)
4. statistics for K=10 replicates of 1,000 fields
5. 20 orchestrations started concurrently from one process vs one

Everything runs against the bundled simulator on 127.0.0.1 with throwaway PREFECT_HOMEs; the
local ``prefect server`` used by (3) is started and stopped here. Prints a table and writes
benchmarks/results/latest.json. See docs/performance.md for what the numbers mean.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._env import (
    BACKENDS,
    BenchHome,
    LocalPrefectServer,
    SimulatorProcess,
    TreeRssSampler,
    create_postgres_database,
    drain_prefect_workers,
    drop_postgres_database,
    flavour_for,
    machine_busy_s,
    one_certificate_file,
    own_peak_rss_kb,
    prepare_process_env,
    reset_peak_rss,
)
from benchmarks.report import Row, format_table, limit_row, ratio_row, write_json

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
PG_DATABASE = f"steer_bench_{os.getpid()}"
LATENCIES = (0.1, 1.0)
KS = (3, 10)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="repetitions per case (median)")
    parser.add_argument("--backend", choices=BACKENDS,
                        default="embedded",
                        help="Prefect API for items 1, 2, 5: the embedded (ephemeral) server, "
                             "a local `prefect server` on SQLite, the same app with SQLite "
                             "BEGIN IMMEDIATE (steer_llm_sdk.prefect_server), or PostgreSQL")
    parser.add_argument("--simulator", choices=("process", "thread"), default="process",
                        help="where the LLM simulator runs: its own process (like a real "
                             "provider) or a thread of this process (shares its GIL)")
    parser.add_argument("--prototype", action="append", default=[],
                        help="engine change to prototype (benchmarks/prototypes.py)")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="extra environment/Prefect setting")
    parser.add_argument("--http-ca-file", action="store_true",
                        help="PREFECT_API_SSL_CERT_FILE = a one-certificate file (cheap client "
                             "SSL contexts; safe only because every API URL here is http)")
    parser.add_argument("--only", action="append", type=int, choices=range(1, 6), default=[],
                        help="run only these items (repeatable)")
    parser.add_argument("--trace", action="store_true",
                        help="print the Prefect API requests of one run per case")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


# -- items 1, 2, 5: in this process ----------------------------------------------------------
async def in_process(args: argparse.Namespace, rows: list[Row], details: dict[str, Any],
                     exclude_pids: set[int]) -> None:
    from benchmarks import prototypes
    from benchmarks.apitrace import TRACER, format_timeline, summarize_calls
    from benchmarks.workload import Samples, Workload, paired
    from steer_llm_sdk.testing import SimulatorServer

    prototypes.apply(args.prototype)
    TRACER.install()
    items = set(args.only) or {1, 2, 3, 4, 5}
    reps = args.reps

    with (SimulatorProcess() if args.simulator == "process" else SimulatorServer()) as sim:
        if isinstance(sim, SimulatorProcess):
            exclude_pids = exclude_pids | {sim.pid()}
        work = Workload(sim)
        try:
            started = time.perf_counter()
            warmup = await work.orchestrate(3, 0.0)
            details["warmup"] = {"first_orchestration_s": round(warmup, 3),
                                 "note": "includes embedded server start when embedded"}
            await work.baseline(3, 0.0)
            TRACER.take()
            cases: dict[tuple[int, float], tuple[Samples, Samples]] = {}
            api: dict[str, Any] = {}

            async def case(k: int, latency: float, n: int) -> None:
                since = time.perf_counter()
                base, orch = await paired(n, lambda: work.baseline(k, latency),
                                          lambda: work.orchestrate(k, latency))
                cases[(k, latency)] = (base, orch)
                calls = TRACER.take()
                summary = summarize_calls(calls, since)
                summary["requests_per_orchestration"] = round(summary["requests"] / n, 1)
                api[f"K={k} L={latency:g}"] = summary
                if args.trace:
                    since = time.perf_counter()
                    await work.orchestrate(k, latency)
                    print(f"\nPrefect API requests of one orchestration, K={k} L={latency:g}:")
                    print("\n".join(format_timeline(TRACER.take(), since)))

            if items & {1, 2, 5}:
                for k in KS:
                    for latency in LATENCIES:
                        if 1 in items or (k, latency) in ((10, 0.1), (3, 0.1)):
                            await case(k, latency, reps)
            if 2 in items:
                await case(50, 0.1, max(3, reps - 2))
            details["api_requests"] = api
            details["cases"] = {f"K={k} L={lat:g}": {"baseline": b.as_dict(),
                                                     "orchestration": o.as_dict()}
                                for (k, lat), (b, o) in cases.items()}
            if 1 in items:
                for k in KS:
                    for latency in LATENCIES:
                        base, orch = cases[(k, latency)]
                        limit = 1.10 if latency == 1.0 else (1.5 if k == 10 else None)
                        rows.append(ratio_row("1", f"orchestration vs baseline, K={k} "
                                                   f"L={latency:g}s", orch.median, base.median,
                                              limit))
            if 2 in items:
                for k in (10, 50):
                    base, orch = cases[(k, 0.1)]
                    per_rep_ms = (orch.median - base.median) / k * 1000
                    rows.append(limit_row("2", f"engine overhead per replicate, K={k} L=0.1s",
                                          per_rep_ms, 10.0 if k == 50 else None, "ms", ".1f"))
            if 5 in items:
                await concurrent_runs(work, reps, cases, rows, details, exclude_pids)
            details["in_process_s"] = round(time.perf_counter() - started, 1)
        finally:
            await work.aclose()


async def concurrent_runs(work: Any, reps: int, cases: dict[Any, Any], rows: list[Row],
                          details: dict[str, Any], exclude_pids: set[int]) -> None:
    from benchmarks.apitrace import TRACER, summarize_calls

    n, k, latency = 20, 3, 0.1
    single = cases[(k, latency)][1].median
    walls: list[float] = []
    reset_ok = reset_peak_rss()
    since = time.perf_counter()
    cpu0, busy0 = time.process_time(), machine_busy_s()
    with TreeRssSampler(os.getpid(), exclude=exclude_pids) as sampler:
        for _ in range(max(2, reps // 2)):
            started = time.perf_counter()
            await asyncio.gather(*(work.orchestrate(k, latency) for _ in range(n)))
            walls.append(time.perf_counter() - started)
    runs = n * len(walls)
    cpu_per_run = (time.process_time() - cpu0) / runs
    machine_per_run = (machine_busy_s() - busy0) / runs
    wall = statistics.median(walls)
    process_peak = own_peak_rss_kb() / 1024
    rows.append(ratio_row("5", f"{n} concurrent orchestrations (K={k} L={latency:g}s) vs one",
                          wall, single, 2.0))
    rows.append(Row("5", "peak RSS during 5: this process / with embedded server",
                    f"{process_peak:.0f} MB / {sampler.peak_kb / 1024:.0f} MB"))
    rows.append(Row("5", "CPU per orchestration during 5: this process / whole machine",
                    f"{cpu_per_run:.3f} s / {machine_per_run:.3f} s"))
    api = summarize_calls(TRACER.take(), since)
    api.pop("by_route")
    details["concurrent"] = {
        "orchestrations": n, "k": k, "latency_s": latency, "walls_s": [round(w, 3) for w in walls],
        "median_wall_s": round(wall, 3), "single_median_s": round(single, 3),
        "process_peak_rss_mb": round(process_peak, 1), "peak_reset": reset_ok,
        "tree_peak_rss_mb": round(sampler.peak_kb / 1024, 1), "api": api,
        "process_cpu_s_per_orchestration": round(cpu_per_run, 3),
        "machine_cpu_s_per_orchestration": round(machine_per_run, 3),
        "note": "machine CPU = all processes (this one, the Prefect server, its database, "
                "anything else running on the machine)",
    }


# -- item 3: fresh processes -----------------------------------------------------------------
def cold_starts(args: argparse.Namespace, home: BenchHome, server: LocalPrefectServer | None,
                rows: list[Row], details: dict[str, Any], extra: dict[str, str]) -> None:
    from benchmarks.coldstart import run_cold_start

    runs = []
    first = run_cold_start("first run, embedded (fresh PREFECT_HOME)", home.sub("cold-fresh"),
                           extra)
    runs.append(first)
    again = run_cold_start("embedded, existing DB", home.sub("cold-fresh"), extra)
    runs.append(again)
    if server is not None:
        up = [run_cold_start("server already up", home.sub(f"cold-server-{i}"),
                             {**extra, "PREFECT_API_URL": server.api_url})
              for i in range(3)]
        runs += up
    details["cold_start"] = [r.as_dict() for r in runs]
    details["cold_start_server_startup_s"] = round(server.startup_s, 2) if server else None
    rows.append(limit_row("3", "cold start, first run, embedded (fresh home)", first.wall_s,
                          None, "s"))
    rows.append(limit_row("3", "cold start, embedded, existing DB", again.wall_s, None, "s"))
    if server is not None:
        walls = sorted(r.wall_s for r in up)
        median = walls[len(walls) // 2]
        rows.append(limit_row("3", "cold start, `prefect server` already up (median of 3)",
                              median, 3.0, "s"))
        rows.append(Row("3", "peak RSS, cold start with server up: process",
                        f"{max(r.self_peak_rss_mb for r in up):.0f} MB"))
    rows.append(Row("3", "peak RSS, cold start embedded: process / with embedded server",
                    f"{first.self_peak_rss_mb:.0f} MB / {first.tree_peak_rss_mb:.0f} MB"))
    broken = [r for r in runs if not r.ok]
    rows.append(Row("3", "cold-start output free of tracebacks, exit 0",
                    "yes" if not broken else "NO: " + ", ".join(r.label for r in broken),
                    "yes", "-", not broken))
    for r in broken:
        print(f"--- {r.label}: exit {r.returncode}\n{r.output_tail}", file=sys.stderr)


def git_state() -> dict[str, Any]:
    """Commit and uncommitted engine files (read-only git commands)."""
    import subprocess

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=Path(__file__).resolve().parents[1],
                                  capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = git("status", "--porcelain", "--", "flows", "tasks", "steer_llm_sdk", "steer_tools")
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted_engine_files": [line[3:] for line in dirty.splitlines()]}


def meta(args: argparse.Namespace, extra: dict[str, str]) -> dict[str, Any]:
    import importlib.metadata as md

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": platform.python_version(),
        "git": git_state(),
        "platform": platform.platform(), "cpus": os.cpu_count(),
        "prefect": version("prefect"), "openai": version("openai"),
        "backend": args.backend, "simulator": args.simulator, "prototypes": args.prototype,
        "settings": {k: v for k, v in extra.items() if k != "PREFECT_API_SSL_CERT_FILE"}
        | ({"PREFECT_API_SSL_CERT_FILE": "<one certificate>"} if args.http_ca_file else {}),
        "reps": args.reps,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    extra = dict(s.split("=", 1) for s in args.settings)
    items = set(args.only) or {1, 2, 3, 4, 5}
    home = BenchHome()
    from benchmarks import prototypes

    prototypes.CA_FILE.append(one_certificate_file(home.root))
    prototypes.expand(args.prototype)  # fail fast on a typo
    if args.http_ca_file:
        extra["PREFECT_API_SSL_CERT_FILE"] = str(one_certificate_file(home.root))
    prepare_process_env(home.sub("main"), extra)
    rows: list[Row] = []
    details: dict[str, Any] = {}
    servers: list[LocalPrefectServer] = []
    pg_url: str | None = None
    started = time.perf_counter()
    try:
        if 4 in items:
            from benchmarks.stats_bench import measure

            stats = measure()
            details["statistics"] = stats
            rows.append(limit_row("4", "statistics, K=10 x 1,000 fields (summarize, median)",
                                  stats["median_s"] * 1000, 50.0, "ms", ".1f"))
        server: LocalPrefectServer | None = None
        if args.backend == "postgres":
            pg_url = asyncio.run(create_postgres_database(PG_DATABASE))
            if pg_url is None:
                raise SystemExit("--backend postgres: PostgreSQL on 127.0.0.1:5432 (or asyncpg) "
                                 "is not available")
        if 3 in items or args.backend != "embedded":
            server = LocalPrefectServer(home.sub("server"), database_url=pg_url,
                                        flavour=flavour_for(args.backend)).start()
            servers.append(server)
            details["server"] = {"api_url": server.api_url, "startup_s": round(
                server.startup_s, 2), "database": "postgresql" if pg_url else "sqlite"}
        if 3 in items:
            cold_starts(args, home, server, rows, details, extra)
        if args.backend == "embedded" and server is not None:
            server.stop()  # idle, but its services would still share the 2 cores
            server = None
        if items & {1, 2, 5}:
            if server is not None:
                os.environ["PREFECT_API_URL"] = server.api_url  # before Prefect is imported
            exclude = set(server.pids()) if server else set()
            asyncio.run(in_process(args, rows, details, exclude))
    finally:
        drain_prefect_workers()
        for srv in servers:
            srv.stop()
        if pg_url is not None:
            asyncio.run(drop_postgres_database(PG_DATABASE))
        home.cleanup()
    order = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
    rows.sort(key=lambda r: order[r.item])
    details["total_s"] = round(time.perf_counter() - started, 1)
    info = meta(args, extra)
    git = info["git"]
    print(f"\nsteer-llm-sdk benchmarks  commit={git['commit'] or '?'}"
          f"{'+local changes' if git['uncommitted_engine_files'] else ''}  "
          f"backend={args.backend}  simulator={args.simulator}  prototypes="
          f"{','.join(args.prototype) or 'none'}  settings={info['settings'] or 'default'}  "
          f"reps={args.reps}  prefect={info['prefect']}  cpus={info['cpus']}  "
          f"({details['total_s']:.0f} s)\n")
    print(format_table(rows))
    write_json(args.output, info, rows, details)
    print(f"\nwrote {args.output}")
    failed = [r for r in rows if r.passed is False]
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
