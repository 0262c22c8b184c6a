"""Bundle tools: one analysis defined once, replicated K times by the engine.

A BundleTool never runs its own parallelism: it defines ONE replicate (and optionally how to
validate it); the engine runs the replicates as Prefect task runs, decides early stop, and
computes the statistics. ``execute`` exists so a bundle tool can also be called directly
(sequentially, without Prefect), e.g. in a unit test of the tool itself.
"""

from __future__ import annotations

import inspect
import time
from abc import abstractmethod
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from steer_llm_sdk.input_models import InputModel, check_bundle_option, input_error_from
from steer_llm_sdk.validation import check_json_schema, check_option_names
from steer_tools.base import Tool, ToolContext, ToolResult
from steer_tools.evidence import BundleLimits, EvidenceBundle, Replicate, ReplicateQuality, Usage


def default_seeds(k: int) -> list[int]:
    """Seeds 1..k: stable across runs, so the same question replays the same samples."""
    return list(range(1, k + 1))


class BundleOptions(InputModel):
    model_config = ConfigDict(extra="forbid")

    k: int = Field(3, ge=2, le=50, description="Replicates to run (self-consistency: 20-40).")
    seeds: list[int] | None = Field(None, description="One per replicate; default 1..k.")
    epsilon: float = Field(0.2, ge=0.0, le=1.0, description="Agreement tolerance / early stop.")
    early_stop: bool = Field(True, description="Stop after 2 replicates that agree within epsilon.")
    schema_uri: str | None = None
    output_schema: dict[str, Any] | None = Field(None, description="JSON schema for replicates.")
    per_replicate_budget: dict[str, float] | None = None
    global_budget: dict[str, float] | None = None
    bundle_limits: BundleLimits = Field(default_factory=BundleLimits)
    list_mode: Literal["set", "ordered"] | dict[str, Literal["set", "ordered"]] = Field(
        "set", description='Arrays of scalars as item sets ("set", default) or by position '
        '("ordered"); or {field template: mode}, e.g. {"risks": "ordered", "plans[]": "set"}.')
    max_parallel: int | None = Field(None, ge=1, le=20)
    timeout_ms: int | None = Field(None, gt=0)
    trace_id: str | None = None
    request_id: str | None = None

    @field_validator("per_replicate_budget", "global_budget", "seeds", "output_schema",
                     "trace_id", "request_id", mode="before")
    @classmethod
    def _check_inputs(cls, value: Any, info: ValidationInfo) -> Any:
        """Rules and messages live in steer_llm_sdk/validation.py (docs/security.md)."""
        return check_bundle_option(info.field_name or "", value)

    @model_validator(mode="after")
    def _check_seeds(self) -> BundleOptions:
        if self.seeds is not None:
            if len(self.seeds) != self.k:
                raise ValueError(
                    f"seeds has {len(self.seeds)} entries but k={self.k}; give one seed per "
                    "replicate or omit seeds"
                )
            if len(set(self.seeds)) != len(self.seeds):
                raise ValueError("seeds must be distinct: equal seeds give identical replicates")
        return self

    def resolved_seeds(self) -> list[int]:
        return list(self.seeds) if self.seeds is not None else default_seeds(self.k)

    @property
    def stops_early(self) -> bool:
        """Early stop applies: the first two replicates run alone, the rest only if they
        disagree."""
        return self.early_stop and self.k > 2

    def parallelism(self, run_max_parallel: int) -> int:
        """Replicates in flight at once: the bundle's own max_parallel wins over the run's."""
        return self.max_parallel or run_max_parallel

    def budget_limits(self, run_limits: dict[str, float]) -> dict[str, float]:
        """The run's budget limits, tightened by this bundle's global_budget."""
        limits = dict(run_limits)
        for key, limit in (self.global_budget or {}).items():
            limits[key] = min(limits.get(key, limit), limit)
        return limits


class ReplicateContext(ToolContext):
    replicate_id: str
    seed: int
    options: dict[str, Any] = Field(default_factory=dict)


class ReplicateOutput(BaseModel):
    """What one replicate produced; a bare value from ``run_replicate`` becomes ``data``."""

    data: Any = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    model: str | None = None
    quality: ReplicateQuality | None = None


class BundleTool(Tool):
    """Subclass and implement ``run_replicate``; set ``output_model`` (pydantic) or
    ``output_schema`` (JSON schema) to have each replicate validated."""

    output_model: type[BaseModel] | None = None
    output_schema: dict[str, Any] | None = None
    default_k: int = 3
    # True: the first attempt of the first wave may start before its Prefect task run exists
    # (OrchestrationConfig.eager_replicates); only for run_replicate code that needs no Prefect
    # run context (get_run_logger, TaskRunContext). LLMBundleTool sets it.
    eager_start: bool = False

    def default_options(self) -> BundleOptions:
        return BundleOptions(k=self.default_k)

    # Option names a subclass accepts on top of BundleOptions' fields (its own knobs).
    extra_option_names: frozenset[str] = frozenset()

    @property
    def option_names(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset(BundleOptions.model_fields) | self.extra_option_names

    def parse_options(self, options: dict[str, Any] | None) -> BundleOptions:
        """Tool options -> BundleOptions. Unknown names are an InputError with a "did you
        mean" (a misspelt ``early_stp`` must not silently keep early stop on); names in
        ``extra_option_names`` are left for the tool."""
        options = options or {}
        check_option_names("tool_options", [k for k in options if not str(k).startswith("_")],
                           self.option_names | {"fallback_tools"})  # '_x': the engine's own
        merged = self.default_options().model_dump(exclude_unset=True)
        known = set(BundleOptions.model_fields)
        merged.update({k: v for k, v in options.items() if k in known})
        try:
            return BundleOptions.model_validate(merged)
        except ValidationError as exc:
            raise input_error_from("tool_options", exc) from None

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        self.parse_options(options)

    def check_contract(self) -> None:
        super().check_contract()
        if not inspect.iscoroutinefunction(self.run_replicate):
            raise TypeError(f"{type(self).__name__}.run_replicate must be a coroutine function: "
                            "declare it `async def run_replicate(self, request, seed, context)`")
        if self.output_model is not None and not (
                isinstance(self.output_model, type) and issubclass(self.output_model, BaseModel)):
            raise TypeError(f"{type(self).__name__}.output_model must be a pydantic BaseModel "
                            f"subclass or None, got {self.output_model!r}")
        check_json_schema(f"{type(self).__name__}.output_schema", self.output_schema)

    @abstractmethod
    async def run_replicate(
        self, request: dict[str, Any], seed: int, context: ReplicateContext
    ) -> ReplicateOutput | Any:
        """Produce one replicate. Raise to fail it; the engine retries retryable errors."""

    def replicate_schema(self, options: BundleOptions) -> dict[str, Any] | None:
        """The JSON schema replicates follow (bounds and list modes for the statistics)."""
        if options.output_schema is not None:
            return options.output_schema
        if self.output_schema is not None:
            return self.output_schema
        return self.output_model.model_json_schema() if self.output_model is not None else None

    def validate_replicate(self, data: Any, options: BundleOptions) -> ReplicateQuality:
        """Default: validate against ``output_model`` / ``output_schema`` when set."""
        schema = options.output_schema or self.output_schema
        if self.output_model is not None:
            try:
                self.output_model.model_validate(data)
            except ValidationError as exc:
                return ReplicateQuality(
                    valid=False,
                    errors=[
                        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                        for err in exc.errors()
                    ],
                    schema_version=options.schema_uri,
                )
        elif schema is not None:
            return _validate_json_schema(data, schema, options.schema_uri)
        return ReplicateQuality(valid=data is not None, schema_version=options.schema_uri,
                                errors=[] if data is not None else ["replicate returned None"])

    def summarize(self, bundle: EvidenceBundle) -> dict[str, Any]:
        """Optional hook: extra summary facts stored in ``bundle.metadata['tool_summary']``."""
        return {}

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "is_bundle": True, "default_k": self.default_k}

    async def execute(
        self, request: dict[str, Any], options: dict[str, Any] | None = None,
        event_manager: Any = None,
    ) -> ToolResult:
        """Sequential, Prefect-free run of all k replicates (no early stop)."""
        from steer_tools.assembly import assemble_bundle

        opts = self.parse_options(options or {})
        started = time.perf_counter()
        replicates: list[Replicate] = []
        for index, seed in enumerate(opts.resolved_seeds()):
            rid = f"r{index + 1}"
            ctx = ReplicateContext(tool_name=self.name, trace_id=opts.trace_id or "local",
                                   request_id=opts.request_id or "local", replicate_id=rid,
                                   seed=seed)
            t0 = time.perf_counter()
            out = await self.run_replicate(request, seed, ctx)
            out = out if isinstance(out, ReplicateOutput) else ReplicateOutput(data=out)
            quality = out.quality or self.validate_replicate(out.data, opts)
            replicates.append(Replicate(id=rid, data=out.data, quality=quality, usage=out.usage,
                                        cost_usd=out.cost_usd, seed=seed, model=out.model,
                                        elapsed_ms=(time.perf_counter() - t0) * 1000))
        bundle = assemble_bundle(self, replicates, opts,
                                 elapsed_ms=(time.perf_counter() - started) * 1000)
        return ToolResult(content=bundle.model_dump(mode="json"), usage=bundle.usage_total,
                          cost_usd=bundle.cost_total_usd, cost_breakdown=bundle.cost_breakdown)


def _validate_json_schema(
    data: Any, schema: dict[str, Any], version: str | None
) -> ReplicateQuality:
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema)
    errors = [
        f"{'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in validator_cls(schema).iter_errors(data)
    ]
    return ReplicateQuality(valid=not errors, errors=errors, schema_version=version)
