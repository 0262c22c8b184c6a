"""Durable replicates: a finished replicate is persisted once and never paid for twice.

When a run has a *run key* (its scoped idempotency key, or for a persisted deployed run its
flow run id), each replicate task run persists its result through Prefect's own result
persistence and transactions, under a cache key made of everything that decides the answer:

    run key + tool name + tool fingerprint + request hash + options hash + seed + replicate id

A re-run after a crash (same idempotency key), a Prefect retry of the flow run (same flow run
id) or a worker restart finds the record and Prefect serves it as a ``Cached`` state: the task
function, and so the provider, is not called. Prefect's default cache policy (inputs + task
source + run id) cannot be used: it ignores the tool's prompt/version and, within one flow
run, would serve a replicate another replicate's result if their inputs matched.

Without a run key (an in-process run with no idempotency key) nothing is persisted: no file
per replicate for runs that could never be resumed (docs/performance.md).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from steer_llm_sdk.tasks.eager import first_wave, replicate_options
from steer_llm_sdk.tasks.runtime import RunSession, get_session

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.reliability.idempotency import canonical_request_hash
from steer_tools.bundle import BundleTool

KEY_PREFIX = "steer-replicate-"


def _plain(value: Any) -> Any:
    unquote = getattr(value, "unquote", None)  # prefect.utilities.annotations.quote
    return unquote() if callable(unquote) else value


@functools.lru_cache(maxsize=256)
def _code_hash(cls: type) -> str:
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # built in a REPL / no source: the class name must do
        source = f"{cls.__module__}.{cls.__qualname__}"
    return hashlib.sha256(source.encode()).hexdigest()


def tool_fingerprint(tool: Any) -> str:
    """What makes two tools give the same answer: class code, version and plain settings
    (model, prompts, schema, temperature...). A tool may define ``fingerprint()`` itself."""
    custom = getattr(tool, "fingerprint", None)
    if callable(custom):
        return str(custom())
    settings: dict[str, Any] = {}
    for name, value in sorted(vars(tool).items()):
        try:
            json.dumps(value, sort_keys=True)
        except (TypeError, ValueError):  # objects (providers, model classes) are not settings
            continue
        settings[name] = value
    return canonical_request_hash({
        "class": f"{type(tool).__module__}.{type(tool).__qualname__}",
        "code": _code_hash(type(tool)), "version": getattr(tool, "version", None),
        "settings": settings,
    })


def replicate_cache_key(run_key: str, tool: Any, request: dict[str, Any],
                        options: dict[str, Any], seed: int, replicate_id: str) -> str:
    digest = canonical_request_hash({
        "run": run_key, "tool": tool.name, "fingerprint": tool_fingerprint(tool),
        "request": canonical_request_hash(request), "options": canonical_request_hash(options),
        "seed": seed, "replicate": replicate_id,
    })
    return KEY_PREFIX + digest


@dataclass
class DurableReplicatePolicy(CachePolicy):
    """Prefect cache policy of durable replicate task runs (see the module docstring)."""

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        session = get_session(_plain(inputs.get("session_id")))
        if session is None or not session.run_key:
            return None
        tool = session.tools.get(_plain(inputs["tool_name"]))
        if tool is None:
            return None
        return replicate_cache_key(session.run_key, tool, _plain(inputs["request"]),
                                   _plain(inputs["options"]), _plain(inputs["seed"]),
                                   _plain(inputs["replicate_id"]))


def durable_task_options(session: RunSession) -> dict[str, Any]:
    """``with_options`` for the replicate task when the run has a run key, else nothing."""
    if not session.run_key:
        return {}
    # Its own serializer: a deployed flow stores its result as plain JSON text with no object
    # encoder (deployments/results.py), which tasks would inherit and which cannot write a
    # Replicate model; Prefect's JSON serializer writes it as JSON and reads it back as one.
    return {"cache_policy": DurableReplicatePolicy(), "persist_result": True,
            "result_serializer": "json",
            "cache_expiration": timedelta(seconds=session.reliability.idempotency_ttl_s)}


def in_process_result_store() -> Any:
    """The result store in-process flow runs write replicate results to (flows/orchestrate.py
    names Prefect's local storage path as their result storage)."""
    from prefect.filesystems import LocalFileSystem
    from prefect.results import ResultStore
    from prefect.settings import get_current_settings

    path = get_current_settings().results.local_storage_path
    return ResultStore(result_storage=LocalFileSystem(basepath=str(path)))


async def stored_replicates(session: RunSession, tool: BundleTool, request: dict[str, Any],
                            tool_options: dict[str, Any], cfg: OrchestrationConfig
                            ) -> frozenset[str]:
    """Replicate ids of the eager first wave whose results are already stored for this run
    key: the eager start must not send them again (a resume would re-spend them)."""
    if not session.run_key:
        return frozenset()
    options = replicate_options(
        {k: v for k, v in tool_options.items() if k != "fallback_tools"}, cfg)
    wave = first_wave(tool, options, cfg, session.budget.limits)
    if not wave:
        return frozenset()
    store = in_process_result_store()
    found = set()
    for replicate_id, seed in wave:
        key = replicate_cache_key(session.run_key, tool, request, options, seed, replicate_id)
        if await store.aexists(key):
            found.add(replicate_id)
    return frozenset(found)
