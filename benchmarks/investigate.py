"""Where the engine's time goes: tools behind docs/performance.md (not part of ``make bench``).

    python -m benchmarks.investigate phases  [--backend B] [--k 10] [--latency 1.0] [--n 5]
    python -m benchmarks.investigate profile [--backend B] [--k 50] [--latency 0] [--n 5]
    python -m benchmarks.investigate wallprofile [--backend B] [--k 3] [--latency 0] [--n 10]
    python -m benchmarks.investigate ab      [--backend B] [--k 10] [--latency 0.1] [--n 8]
                                             [--config NAME=proto,proto ...]
    python -m benchmarks.investigate micro
    python -m benchmarks.investigate growth  [--backend B] [--n 30]

Common options: --prototype NAME|all, --set KEY=VALUE, --http-ca-file (as in benchmarks.run).

* phases: per orchestration, when the flow body starts, when the first provider call starts,
  when the last one ends, when the run returns, the Prefect API requests made and the CPU used.
* profile: cProfile of the loop thread over n orchestrations (top functions by own time).
* wallprofile: pyinstrument (``pip install pyinstrument``) wall-clock tree of n orchestrations,
  awaits included, so waiting on the API shows up next to CPU.
* ab: A/B/... comparison of prototype sets, alternated run by run in one process (so background
  load on a shared machine hits every configuration alike); medians and deltas vs "none".
* micro: costs of single operations the engine repeats per run or per replicate.
* growth: threads and RSS after n orchestrations (a leak shows as linear growth).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from typing import Any

from benchmarks._env import (
    BACKENDS,
    BenchHome,
    machine_busy_s,
    one_certificate_file,
    prefect_backend,
    prepare_process_env,
    tree_rss_kb,
)


class Phases:
    """Timestamps recorded by thin wrappers around the flow body and the provider call."""

    def __init__(self) -> None:
        self.body: list[tuple[float, float]] = []
        self.calls: list[tuple[float, float]] = []

    def install(self) -> None:
        import steer_llm_sdk.flows.orchestrate as orchestrate_module

        from steer_llm_sdk.providers.openai_provider import OpenAIProvider

        original_run = orchestrate_module._run
        original_complete = OpenAIProvider.complete
        phases = self

        async def _run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original_run(*args, **kwargs)
            finally:
                phases.body.append((started, time.perf_counter()))

        async def complete(provider: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original_complete(provider, *args, **kwargs)
            finally:
                phases.calls.append((started, time.perf_counter()))

        orchestrate_module._run = _run
        OpenAIProvider.complete = complete  # type: ignore[method-assign]

    def reset(self) -> None:
        self.body.clear()
        self.calls.clear()


def _setup(args: argparse.Namespace) -> None:
    from benchmarks import prototypes
    from benchmarks.apitrace import TRACER

    prototypes.apply(args.prototype)
    TRACER.install()


async def phases_cmd(args: argparse.Namespace) -> None:
    from benchmarks.apitrace import TRACER, format_timeline, summarize_calls
    from benchmarks.workload import Workload
    from steer_llm_sdk.testing import SimulatorServer

    _setup(args)
    phases = Phases()
    phases.install()
    rows = []
    with SimulatorServer() as sim:
        work = Workload(sim)
        await work.orchestrate(3, 0.0)
        base = statistics.median([await work.baseline(args.k, args.latency) for _ in range(3)])
        for i in range(args.n):
            phases.reset()
            TRACER.take()
            busy0, cpu0, t0 = machine_busy_s(), time.process_time(), time.perf_counter()
            await work.orchestrate(args.k, args.latency)
            t_end, cpu = time.perf_counter(), time.process_time() - cpu0
            machine_cpu = machine_busy_s() - busy0
            calls = TRACER.take()
            body_start, body_end = phases.body[-1]
            first_call = min(s for s, _ in phases.calls)
            last_call = max(e for _, e in phases.calls)
            row = {
                "to_flow_body": body_start - t0,
                "body_to_first_call": first_call - body_start,
                "provider_calls": last_call - first_call,
                "last_call_to_body_end": body_end - last_call,
                "body_end_to_return": t_end - body_end,
                "total": t_end - t0,
                "cpu": cpu,
                "machine_cpu": machine_cpu,
                "api": len(calls),
            }
            rows.append(row)
            retried = summarize_calls(calls, t0)["retryable_errors"]
            print(f"run {i + 1}: " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float)
                                              else f"{k}={v}" for k, v in row.items())
                  + (f"  RETRIED: {retried}" if retried else ""))
            if args.verbose:
                print("\n".join(format_timeline(calls, t0)))
        await work.aclose()
    print(f"\nbaseline (bare asyncio, same {args.k} calls): {base:.3f} s")
    medians = {k: round(statistics.median(r[k] for r in rows), 4) for k in rows[0]}
    print("median: " + "  ".join(f"{k}={v:.3f}" for k, v in medians.items()))
    print("RESULT " + json.dumps({"baseline": round(base, 4), **medians,
                                  "overhead": round(medians["total"] - base, 4)}))


async def profile_cmd(args: argparse.Namespace) -> None:
    import cProfile
    import pstats

    from benchmarks.workload import Workload
    from steer_llm_sdk.testing import SimulatorServer

    _setup(args)
    with SimulatorServer() as sim:
        work = Workload(sim)
        await work.orchestrate(3, 0.0)
        await work.orchestrate(args.k, args.latency)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.n):
            await work.orchestrate(args.k, args.latency)
        profiler.disable()
        await work.aclose()
    out = args.output or "/tmp/steer-bench.prof"
    profiler.dump_stats(out)
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(f"profile written to {out}")


async def wallprofile_cmd(args: argparse.Namespace) -> None:
    from pyinstrument import Profiler

    from benchmarks.workload import Workload
    from steer_llm_sdk.testing import SimulatorServer

    _setup(args)
    with SimulatorServer() as sim:
        work = Workload(sim)
        await work.orchestrate(3, 0.0)
        await work.orchestrate(args.k, args.latency)
        profiler = Profiler(interval=0.0005, async_mode="enabled")
        with profiler:
            for _ in range(args.n):
                await work.orchestrate(args.k, args.latency)
        await work.aclose()
    print(profiler.output_text(unicode=False, color=False, show_all=args.verbose,
                               time="percent_of_total"))
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(profiler.output_html())


DEFAULT_AB = [
    "engine as is=",
    "legacy=legacy",
    *[f"{p}={p}" for p in ("legacy-task-tags", "legacy-sync-statistics",
                           "legacy-deployment-lookup", "legacy-default-result-storage",
                           "stable-task-tags", "no-task-tags", "async-statistics",
                           "context-deployment-id", "named-result-storage",
                           "parallel-artifacts", "json-result", "shared-client",
                           "http-ca-file", "cached-ca-settings", "csrf-off")],
    "all=all",
    "all+http-ca-file=all,http-ca-file",
]


async def ab_cmd(args: argparse.Namespace) -> None:
    from benchmarks import prototypes
    from benchmarks.workload import Workload
    from steer_llm_sdk.testing import SimulatorServer

    configs = [(c.split("=", 1)[0], [p for p in c.split("=", 1)[1].split(",") if p])
               for c in (args.config or DEFAULT_AB)]
    for _, names in configs:
        prototypes.expand(names)  # fail fast on a typo
    walls: dict[str, list[float]] = {name: [] for name, _ in configs}
    cpus: dict[str, list[float]] = {name: [] for name, _ in configs}
    base: list[float] = []
    with SimulatorServer() as sim:
        work = Workload(sim)
        await work.orchestrate(3, 0.0)
        for rep in range(args.n):
            base.append(await work.baseline(args.k, args.latency))
            shift = rep % len(configs)
            for name, names in configs[shift:] + configs[:shift]:
                undo = prototypes.apply(names)
                try:
                    cpu0 = time.process_time()
                    walls[name].append(await work.orchestrate(args.k, args.latency))
                    cpus[name].append(time.process_time() - cpu0)
                finally:
                    undo()
        await work.aclose()
    b = statistics.median(base)
    ref = statistics.median(walls[configs[0][0]])
    print(f"K={args.k} L={args.latency:g} backend={args.backend} n={args.n}; "
          f"baseline median {b:.3f} s")
    print(f"{'configuration':28} {'median s':>9} {'overhead s':>10} {'vs first':>9} "
          f"{'cpu s':>7}")
    results = {}
    for name, _ in configs:
        m = statistics.median(walls[name])
        c = statistics.median(cpus[name])
        results[name] = {"median_s": round(m, 4), "overhead_s": round(m - b, 4),
                         "delta_vs_first_s": round(m - ref, 4), "cpu_s": round(c, 4),
                         "samples_s": [round(w, 3) for w in walls[name]]}
        print(f"{name:28} {m:9.3f} {m - b:10.3f} {m - ref:+9.3f} {c:7.3f}")
    if prototypes.NOT_APPLIED:
        print("no-ops (the engine already behaves so): " + "; ".join(
            f"{k}: {v}" for k, v in prototypes.NOT_APPLIED.items()))
    print("RESULT " + json.dumps({"baseline_s": round(b, 4), "configs": results,
                                  "not_applied": prototypes.NOT_APPLIED}))


async def micro_cmd(args: argparse.Namespace) -> None:
    import ssl

    import certifi
    import httpx
    from prefect.client.orchestration import get_client
    from steer_llm_sdk.tasks.replicate import run_replicate

    from steer_llm_sdk.config import RetryPolicy
    from steer_llm_sdk.reliability.retry import prefect_retry_options

    def per_call(fn: Any, n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - started) / n * 1000

    options = prefect_retry_options(RetryPolicy())
    get_client()  # the first call may start the embedded server
    from prefect.context import SettingsContext
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, temporary_settings

    from benchmarks import prototypes

    ca = str(prototypes.CA_FILE[0])

    def enter_temporary_settings() -> None:
        with temporary_settings({PREFECT_API_SSL_CERT_FILE: ca}):
            pass

    current = SettingsContext.get()
    assert current is not None
    cached = current.settings.copy_with_update(updates={PREFECT_API_SSL_CERT_FILE: ca})

    def enter_cached_settings() -> None:
        with SettingsContext(profile=current.profile, settings=cached):
            pass

    results = {
        "prefect temporary_settings({...}) enter+exit ms": per_call(
            enter_temporary_settings, 20),
        "SettingsContext(prebuilt settings) enter+exit ms": per_call(enter_cached_settings, 200),
        "run_replicate.with_options(**retry) ms": per_call(
            lambda: run_replicate.with_options(**options), 200),
        "prefect_retry_options(policy) ms": per_call(
            lambda: prefect_retry_options(RetryPolicy()), 200),
        "ssl.create_default_context(cafile=certifi) ms (per Prefect client)": per_call(
            lambda: ssl.create_default_context(cafile=certifi.where()), 20),
        "ssl.create_default_context() ms (system store)": per_call(
            ssl.create_default_context, 20),
        "httpx.AsyncClient() ms": per_call(lambda: httpx.AsyncClient(), 20),
        "prefect get_client() ms": per_call(lambda: get_client(), 20),
    }
    for name, value in results.items():
        print(f"{value:8.2f}  {name}")


async def growth_cmd(args: argparse.Namespace) -> None:
    from benchmarks.workload import Workload
    from steer_llm_sdk.testing import SimulatorServer

    _setup(args)
    with SimulatorServer() as sim:
        work = Workload(sim)
        await work.orchestrate(3, 0.0)
        samples = []
        for i in range(args.n):
            await work.orchestrate(3, 0.0)
            if i % max(1, args.n // 6) == 0 or i == args.n - 1:
                samples.append((i + 1, threading.active_count(),
                                tree_rss_kb(os.getpid()) // 1024, _queue_services()))
        await work.aclose()
    print("orchestrations  threads  rss_mb(process tree)  prefect queue services")
    for n, threads, rss, services in samples:
        print(f"{n:14d}  {threads:7d}  {rss:20d}  {services}")


def _queue_services() -> int:
    from prefect.concurrency.services import ConcurrencySlotAcquisitionWithLeaseService

    return len(ConcurrencySlotAcquisitionWithLeaseService._instances)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.investigate")
    parser.add_argument("command",
                        choices=("phases", "profile", "wallprofile", "ab", "micro", "growth"))
    parser.add_argument("--backend", choices=BACKENDS,
                        default="embedded")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--output")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--prototype", action="append", default=[])
    parser.add_argument("--set", dest="settings", action="append", default=[])
    parser.add_argument("--http-ca-file", action="store_true")
    parser.add_argument("--config", action="append", default=[], metavar="NAME=p1,p2",
                        help="ab: a configuration (prototype list, may be empty)")
    parser.add_argument("--server-set", action="append", default=[], metavar="KEY=VALUE",
                        help="setting for the local prefect server process only")
    parser.add_argument("--server-workers", type=int, default=1)
    args = parser.parse_args(argv)
    home = BenchHome()
    from benchmarks import prototypes

    prototypes.CA_FILE.append(one_certificate_file(home.root))
    extra = dict(s.split("=", 1) for s in args.settings)
    if args.http_ca_file:
        extra["PREFECT_API_SSL_CERT_FILE"] = str(one_certificate_file(home.root))
    prepare_process_env(home.sub("main"), extra)
    command = {"phases": phases_cmd, "profile": profile_cmd, "wallprofile": wallprofile_cmd,
               "ab": ab_cmd, "micro": micro_cmd, "growth": growth_cmd}[args.command]
    try:
        server_settings = dict(s.split("=", 1) for s in args.server_set)
        with prefect_backend(args.backend, home, server_settings, args.server_workers):
            asyncio.run(command(args))
    finally:
        home.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
