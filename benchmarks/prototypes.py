"""Engine changes prototyped by monkeypatching, so their effect can be measured without editing
the engine (``--prototype NAME`` in benchmarks.run / benchmarks.investigate). Each is the
runtime equivalent of a small source change described in docs/performance.md.

The engine is being changed while these exist, so every prototype first checks whether the
engine already behaves that way; then it does nothing and says so (``NOT_APPLIED``). The
``legacy-*`` prototypes put an old behaviour back, so a change that already landed can still be
measured against what it replaced.

Forward changes:

* ``stable-task-tags`` / ``no-task-tags``: which tags task runs carry. Prefect copies the tag
  context onto every task run, and before a *tagged* task run starts the task engine asks the
  API for tag concurrency slots (``POST /api/v2/concurrency_limits/increment-with-lease``).
  "No limit for this tag set" is cached for 5 s per *tag set* and acquisitions for one tag
  set are serialised through one queue (a service thread with its own API client), so a
  per-run unique tag such as ``trace:<id>`` makes every orchestration pay that round trip
  before its first replicate can start -- and on SQLite a "database is locked" 503 there costs
  ~2 s. ``stable-task-tags`` keeps the run-independent tags (``steer``, ``tool:<name>``, ...;
  tag concurrency limits keep working, one lookup per 5 s); ``no-task-tags`` drops them all.
  The flow run keeps every tag either way.
* ``async-statistics``: ``compute-statistics`` as an ``async def`` task. A *sync* task called
  from the async flow runs Prefect's sync task engine on the loop thread: a SyncPrefectClient
  (a fresh SSL context loading the CA bundle), a blocking read of the server's default result
  storage, and sync tag-concurrency handling, while every other coroutine on the loop waits.
* ``context-deployment-id``: read ``deployment_id`` from ``FlowRunContext`` instead of
  ``prefect.runtime.deployment.id``, which for a run that has none falls back to a *blocking*
  API read of the flow run (a new API client too) from the loop thread.
* ``named-result-storage``: give the flow a result storage up front so Prefect does not ask
  the server for its default (a sync client plus a blocking GET ``/admin/storage``, twice per
  flow run).
* ``parallel-artifacts``: create the two evidence artifacts concurrently (one round trip at the
  end of every run instead of two).
* ``json-result``: the flow returns its output as one JSON string. On return Prefect walks the
  whole return value looking for futures (``resolve_futures_to_states`` ->
  ``visit_collection``, pure Python over every replicate and statistic); a string is one leaf.
  Readers of the result (the orchestrator, ``trigger``) then parse the string.
* ``shared-client``: all orchestrations on one event loop reuse one long-lived
  ``AsyncClientContext``, so Prefect's flow engine stops building an API client per flow run
  (an SSL context and a CSRF-token request each time).
* ``http-ca-file``: a setting, toggled at run time: ``PREFECT_API_SSL_CERT_FILE`` = a
  one-certificate file while the orchestration runs, so each API client Prefect builds loads
  one certificate instead of the whole CA bundle. Only for an http:// API URL (with https it
  would make verification fail; it never disables it).
* ``cached-ca-settings``: the engine's ``fast_http_api_clients`` (which does the above with
  ``prefect.settings.temporary_settings``) entering a Settings object built once instead:
  ``temporary_settings`` re-validates every Prefect setting on each call (~35 ms CPU).
* ``csrf-off``: ``PREFECT_CLIENT_CSRF_SUPPORT_ENABLED=false`` while the orchestration runs:
  a new API client then skips ``GET /api/csrf-token`` (the server's CSRF protection is off
  by default, the request only returns 422).

Every prototype can be undone (``apply`` returns the undo), so ``benchmarks.investigate ab``
alternates configurations run by run in one process: background load on a shared machine then
hits every configuration alike.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

PER_RUN_TAG_PREFIXES = ("trace:", "idem:")
Undo = Callable[[], None]
NOT_APPLIED: dict[str, str] = {}  # prototype -> why it changed nothing


def _noop() -> None:
    return None


def _skip(name: str, reason: str) -> Undo:
    NOT_APPLIED[name] = reason
    return _noop


class _Patches:
    """setattr with a record, so a prototype can be taken back out."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def undo(self) -> None:
        while self._saved:
            owner, name, value = self._saved.pop()
            setattr(owner, name, value)


# -- tags -------------------------------------------------------------------------------------
def _task_tags(mode: str) -> Callable[[], Undo]:
    """Task runs get the flow run's tags ("run", the behaviour of the first engine), those
    minus per-run ones ("stable"), or none ("none")."""

    def prototype() -> Undo:
        import steer_llm_sdk.flows.orchestrate as orchestrate_module
        from prefect.context import FlowRunContext, TagsContext

        original = orchestrate_module._run

        async def _run(*args: Any, **kwargs: Any) -> Any:
            ctx = FlowRunContext.get()
            tags = set(ctx.flow_run.tags) if ctx and ctx.flow_run else set()
            if mode == "stable":
                tags = {t for t in tags if not t.startswith(PER_RUN_TAG_PREFIXES)}
            with TagsContext(current_tags=tags if mode != "none" else set()):
                return await original(*args, **kwargs)

        patches = _Patches()
        patches.set(orchestrate_module, "_run", _run)  # the flow body looks _run up per call
        return patches.undo

    return prototype


# -- statistics task --------------------------------------------------------------------------
_STATS_ARGS: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "bench_stats_args", default=None)


def _statistics_is_async() -> bool:
    from steer_llm_sdk.tasks.statistics import compute_statistics

    return inspect.iscoroutinefunction(compute_statistics.fn)


def _async_statistics() -> Undo:
    if _statistics_is_async():
        return _skip("async-statistics", "compute_statistics is already an async task")
    import steer_llm_sdk.flows.bundle as bundle_module
    from prefect import task
    from prefect.cache_policies import NONE
    from steer_llm_sdk.tasks.statistics import compute_statistics

    @task(name="compute-statistics", cache_policy=NONE, persist_result=False)
    async def compute_statistics_async(*args: Any) -> Any:
        return compute_statistics.fn(*args)

    def capture(*args: Any) -> None:
        box = _STATS_ARGS.get()
        assert box is not None, "async-statistics prototype: capture outside BundleScheduler"
        box.extend(args)

    original_run = bundle_module.BundleScheduler.run

    async def run(self: Any) -> Any:
        box: list[Any] = []
        token = _STATS_ARGS.set(box)
        try:
            result = await original_run(self)  # calls capture() instead of the sync task
        finally:
            _STATS_ARGS.reset(token)
        bundle = await compute_statistics_async(*box)
        return dataclasses.replace(result, bundle=bundle)

    patches = _Patches()
    patches.set(bundle_module, "compute_statistics", capture)
    patches.set(bundle_module.BundleScheduler, "run", run)
    return patches.undo


def _finish(coro: Any) -> Any:
    """Run a coroutine that never awaits (the statistics are plain CPU work) to its value."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("compute_statistics awaited something; cannot run it synchronously")


def _legacy_sync_statistics() -> Undo:
    if not _statistics_is_async():
        return _skip("legacy-sync-statistics", "compute_statistics is still a sync task")
    import steer_llm_sdk.flows.bundle as bundle_module
    from prefect import task
    from prefect.cache_policies import NONE
    from steer_llm_sdk.tasks.statistics import compute_statistics

    fn = compute_statistics.fn

    @task(name="compute-statistics", cache_policy=NONE, persist_result=False)
    def compute_statistics_sync(*args: Any) -> Any:
        return _finish(fn(*args))

    async def call_sync_task(*args: Any) -> Any:
        return compute_statistics_sync(*args)  # sync task engine, inline on the loop thread

    patches = _Patches()
    patches.set(bundle_module, "compute_statistics", call_sync_task)
    return patches.undo


# -- deployment id ----------------------------------------------------------------------------
class _DeploymentFromContext:
    """Stands in for ``prefect.runtime.deployment`` inside flows.orchestrate: ``id`` comes
    from the flow run already in the run context, never from an API call."""

    @property
    def id(self) -> str | None:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        deployment_id = getattr(getattr(ctx, "flow_run", None), "deployment_id", None)
        return str(deployment_id) if deployment_id else None

    def __getattr__(self, name: str) -> Any:
        from prefect.runtime import deployment

        return getattr(deployment, name)


def _context_deployment_id() -> Undo:
    import steer_llm_sdk.flows.orchestrate as orchestrate_module

    if not hasattr(orchestrate_module, "runtime_deployment"):
        return _skip("context-deployment-id",
                     "flows.orchestrate no longer uses prefect.runtime.deployment")
    patches = _Patches()
    patches.set(orchestrate_module, "runtime_deployment", _DeploymentFromContext())
    return patches.undo


def _legacy_deployment_lookup() -> Undo:
    import steer_llm_sdk.flows.orchestrate as orchestrate_module

    if hasattr(orchestrate_module, "runtime_deployment"):
        return _skip("legacy-deployment-lookup", "the engine still uses runtime.deployment")
    label = getattr(orchestrate_module, "label_flow_run", None)

    async def _label_deployed_run(tool: str | None, trace_id: str) -> None:
        from prefect.runtime import deployment, flow_run

        tags = flow_run.tags or []
        if deployment.id and tool and not any(t.startswith("trace:") for t in tags) and label:
            await label(tool, trace_id)

    patches = _Patches()
    patches.set(orchestrate_module, "_label_deployed_run", _label_deployed_run)
    return patches.undo


# -- result storage ---------------------------------------------------------------------------
def _named_result_storage() -> Undo:
    import steer_llm_sdk.orchestration.orchestrator as orchestrator_module

    if hasattr(orchestrator_module, "in_process_flow"):
        return _skip("named-result-storage", "the orchestrator already names it")
    import steer_llm_sdk.flows.orchestrate as orchestrate_module
    from prefect.settings import get_current_settings

    flow = orchestrate_module.orchestrate.with_options(
        result_storage=get_current_settings().results.local_storage_path)
    patches = _Patches()
    patches.set(orchestrator_module, "orchestrate", flow)
    return patches.undo


def _legacy_default_result_storage() -> Undo:
    import steer_llm_sdk.orchestration.orchestrator as orchestrator_module

    if not hasattr(orchestrator_module, "in_process_flow"):
        return _skip("legacy-default-result-storage", "the orchestrator never named it")
    import steer_llm_sdk.flows.orchestrate as orchestrate_module

    patches = _Patches()
    patches.set(orchestrator_module, "in_process_flow", lambda: orchestrate_module.orchestrate)
    return patches.undo


# -- artifacts, result shape, client ------------------------------------------------------------
def _parallel_artifacts() -> Undo:
    import steer_llm_sdk.flows.artifacts as artifacts
    import steer_llm_sdk.flows.orchestrate as orchestrate_module
    from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

    async def publish_artifacts(output: Any) -> None:
        bundle = output.evidence_bundle
        if bundle is None:
            return
        rows = artifacts.evidence_rows(bundle)
        calls = [acreate_markdown_artifact(
            markdown=artifacts.summary_markdown(output, bundle), key="evidence-summary",
            description="Evidence bundle summary")]
        if rows:
            calls.append(acreate_table_artifact(
                table=rows, key="evidence-fields",
                description="Evidence bundle: per-field agreement"))
        await asyncio.gather(*calls)

    patches = _Patches()
    patches.set(orchestrate_module, "publish_artifacts", publish_artifacts)
    return patches.undo


def _json_result() -> Undo:
    return _skip("json-result", "landed: the flow returns one JSON string")


def _shared_client() -> Undo:
    return _skip("shared-client", "landed: steer_llm_sdk.shared_api_client")


def _legacy_no_eager() -> Undo:
    """Every replicate's provider call starts inside its task run (eager first wave off, as
    with OrchestrationConfig(eager_replicates=False))."""
    import steer_llm_sdk.orchestration.orchestrator as orchestrator_module

    patches = _Patches()
    patches.set(orchestrator_module, "start_eager_replicates", lambda *args, **kwargs: None)
    return patches.undo


CA_FILE: list[Path] = []  # set by the runner (benchmarks._env.one_certificate_file)
_SETTINGS_CACHE: dict[str, tuple[Any, Any]] = {}


def _settings_for(updates: dict[Any, Any]) -> tuple[Any, Any]:
    """(profile, Settings) for the current settings plus ``updates``, built once per base
    Settings object (kept referenced, so the identity check stays valid)."""
    from prefect.context import SettingsContext

    current = SettingsContext.get()
    assert current is not None
    key = repr(sorted((str(k), str(v)) for k, v in updates.items()))
    cached = _SETTINGS_CACHE.get(key)
    if cached is None or cached[0] is not current.settings:
        cached = _SETTINGS_CACHE[key] = (
            current.settings, current.settings.copy_with_update(updates=updates))
    return current.profile, cached[1]


def _with_settings(updates: Callable[[], dict[Any, Any]]) -> Callable[[], Undo]:
    """Run each orchestration inside a SettingsContext with ``updates`` (prebuilt: Prefect's
    temporary_settings re-validates every setting per call, ~35 ms, which would swamp what
    is being measured)."""

    def prototype() -> Undo:
        from prefect.context import SettingsContext

        from steer_llm_sdk.orchestration.orchestrator import BaseOrchestrator

        profile, settings = _settings_for(updates())
        original = BaseOrchestrator._execute

        async def _execute(self: Any, *args: Any, **kwargs: Any) -> Any:
            with SettingsContext(profile=profile, settings=settings):
                return await original(self, *args, **kwargs)

        patches = _Patches()
        patches.set(BaseOrchestrator, "_execute", _execute)
        return patches.undo

    return prototype


def _ca_updates() -> dict[Any, Any]:
    from prefect.settings import PREFECT_API_SSL_CERT_FILE

    assert CA_FILE, "http-ca-file prototype: benchmarks.prototypes.CA_FILE is not set"
    return {PREFECT_API_SSL_CERT_FILE: str(CA_FILE[0])}


def _csrf_updates() -> dict[Any, Any]:
    from prefect.settings import PREFECT_CLIENT_CSRF_SUPPORT_ENABLED

    return {PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: False}


def _cached_ca_settings() -> Undo:
    import contextlib
    from collections.abc import Iterator

    import steer_llm_sdk.orchestration.orchestrator as orchestrator_module

    original = getattr(orchestrator_module, "fast_http_api_clients", None)
    if original is None:
        return _skip("cached-ca-settings", "the engine has no fast_http_api_clients")
    import steer_llm_sdk.api_tls as api_tls

    @contextlib.contextmanager
    def fast_http_api_clients() -> Iterator[None]:
        if not api_tls._applies():
            yield
            return
        from prefect.context import SettingsContext
        from prefect.settings import PREFECT_API_SSL_CERT_FILE

        profile, settings = _settings_for(
            {PREFECT_API_SSL_CERT_FILE: str(api_tls._one_certificate_file())})
        with SettingsContext(profile=profile, settings=settings):
            yield

    patches = _Patches()
    patches.set(orchestrator_module, "fast_http_api_clients", fast_http_api_clients)
    return patches.undo


PROTOTYPES: dict[str, Callable[[], Undo]] = {
    "stable-task-tags": _task_tags("stable"),
    "no-task-tags": _task_tags("none"),
    "async-statistics": _async_statistics,
    "context-deployment-id": _context_deployment_id,
    "named-result-storage": _named_result_storage,
    "parallel-artifacts": _parallel_artifacts,
    "json-result": _json_result,
    "shared-client": _shared_client,
    "http-ca-file": _with_settings(_ca_updates),
    "cached-ca-settings": _cached_ca_settings,
    "csrf-off": _with_settings(_csrf_updates),
    # the behaviour of the first engine, to measure changes that already landed
    "legacy-task-tags": _task_tags("run"),
    "legacy-sync-statistics": _legacy_sync_statistics,
    "legacy-deployment-lookup": _legacy_deployment_lookup,
    "legacy-default-result-storage": _legacy_default_result_storage,
    "legacy-no-eager": _legacy_no_eager,
}
GROUPS: dict[str, list[str]] = {
    # the engine changes recommended in docs/performance.md (http-ca-file is the setting the
    # engine now applies itself; no-task-tags is what the engine does now)
    "all": ["async-statistics", "context-deployment-id", "named-result-storage",
            "parallel-artifacts", "json-result", "shared-client", "cached-ca-settings",
            "csrf-off"],
    "legacy": ["legacy-task-tags", "legacy-sync-statistics", "legacy-deployment-lookup",
               "legacy-default-result-storage"],
}


def expand(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        out += GROUPS.get(name, [name])
    unknown = [n for n in out if n not in PROTOTYPES]
    if unknown:
        raise SystemExit(f"unknown prototype(s) {unknown}; known: {', '.join(PROTOTYPES)}, "
                         f"{', '.join(GROUPS)}")
    return list(dict.fromkeys(out))


def apply(names: list[str]) -> Undo:
    """Apply the named prototypes (or a group); returns one callable undoing them all."""
    undos = [PROTOTYPES[name]() for name in expand(names)]

    def undo() -> None:
        for fn in reversed(undos):
            fn()

    return undo
