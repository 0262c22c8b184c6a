"""Build OrchestrationOutput from what a tool or bundle produced."""

from __future__ import annotations

from typing import Any

from steer_llm_sdk.flows.bundle import BundleRun

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.output import OrchestrationOutput
from steer_tools.base import Tool, ToolResult
from steer_tools.evidence import EvidenceBundle


def _usage_dict(usage: Any) -> dict[str, int]:
    return usage.model_dump() if hasattr(usage, "model_dump") else dict(usage or {})


def bundle_output(tool: Tool, run: BundleRun, cfg: OrchestrationConfig,
                  elapsed_ms: float) -> OrchestrationOutput:
    bundle: EvidenceBundle = run.bundle
    valid = len(bundle.valid_replicates)
    errors: dict[str, dict[str, Any]] = {}
    for rid, info in run.failures.items():
        errors[f"{tool.name}.{rid}"] = info
    for rep in bundle.replicates:
        if not rep.quality.valid and rep.id not in run.failures:
            errors[f"{tool.name}.{rep.id}"] = {
                "type": "ReplicateInvalid", "message": "; ".join(rep.quality.errors),
                "code": "invalid_replicate", "is_retryable": False,
            }
    if valid < 2:
        status = "failed"
    elif errors:
        status = "partial"
    else:
        status = "succeeded"
    if run.skipped_for_budget:
        errors[f"{tool.name}.budget"] = {
            "type": "BudgetReached", "code": "budget_reached", "is_retryable": False,
            "message": f"budget reached: replicates {', '.join(run.skipped_for_budget)} were "
                       "not started",
        }
    quality = _quality_shortfall(bundle, cfg)
    if quality and status == "succeeded":
        status = "partial"
    if quality:
        errors["quality"] = {"type": "QualityRequirementNotMet", "message": quality,
                             "code": "quality", "is_retryable": False}
    content: Any = bundle.model_dump(mode="json")
    if status == "failed":
        content = {"error": {"type": "BundleFailed", "message":
                             f"only {valid} valid replicate(s) of {bundle.meta.k_completed}; "
                             "at least 2 are needed", "code": "bundle_failed"},
                   "bundle": content}
    return OrchestrationOutput(
        content=content,
        usage=_usage_dict(bundle.usage_total),
        cost_usd=bundle.cost_total_usd,
        cost_breakdown=dict(bundle.cost_breakdown),
        elapsed_ms=round(elapsed_ms, 3),
        per_agent={tool.name: {
            "status": status, "usage": _usage_dict(bundle.usage_total),
            "cost_usd": bundle.cost_total_usd, "elapsed_ms": bundle.meta.total_elapsed_ms,
            "replicates": bundle.meta.k_completed, "valid_replicates": valid,
            "skipped_for_budget": run.skipped_for_budget,
        }},
        status=status,
        errors=errors or None,
        metadata={"bundle_meta": bundle.meta.model_dump(mode="json"),
                  "confidence": bundle.summary.confidence,
                  "replicate_count": len(bundle.replicates)},
    )


def _quality_shortfall(bundle: EvidenceBundle, cfg: OrchestrationConfig) -> str | None:
    req = cfg.quality_requirements
    problems = []
    if "min_confidence" in req and bundle.summary.confidence < req["min_confidence"]:
        problems.append(
            f"confidence {bundle.summary.confidence} < min_confidence {req['min_confidence']}"
        )
    valid = len(bundle.valid_replicates)
    if "min_valid_replicates" in req and valid < req["min_valid_replicates"]:
        problems.append(f"{valid} valid replicates < min_valid_replicates "
                        f"{int(req['min_valid_replicates'])}")
    return "; ".join(problems) or None


def tool_output(tool: Tool, result: ToolResult, elapsed_ms: float) -> OrchestrationOutput:
    return OrchestrationOutput(
        content=result.content,
        usage=_usage_dict(result.usage),
        cost_usd=result.cost_usd,
        cost_breakdown=dict(result.cost_breakdown) or {tool.name: result.cost_usd},
        elapsed_ms=round(elapsed_ms, 3),
        per_agent={tool.name: {"status": "succeeded", "usage": _usage_dict(result.usage),
                               "cost_usd": result.cost_usd, "elapsed_ms": round(elapsed_ms, 3)}},
        status="succeeded",
        metadata=dict(result.metadata),
    )


def failed_output(tool_name: str, error: dict[str, Any], elapsed_ms: float) -> OrchestrationOutput:
    return OrchestrationOutput(
        content={"error": error},
        elapsed_ms=round(elapsed_ms, 3),
        per_agent={tool_name: {"status": "failed", "elapsed_ms": round(elapsed_ms, 3)}},
        status="failed",
        errors={tool_name: error},
    )


def apply_ledger(out: OrchestrationOutput, ledger: Any) -> None:
    """Usage and cost are what every provider call reported (the run's CallLedger), not only
    the replicates that made it into the bundle; the difference shows in cost_breakdown as
    ``other_calls``. Runs whose tools never called a provider keep the replicates' sums."""
    summary = ledger.summary()
    out.metadata["unaccounted_calls"] = summary["unaccounted_calls"]
    if summary["calls"] == 0:
        return
    out.metadata["provider_calls"] = summary["calls"]
    out.usage = ledger.usage()
    out.cost_usd = summary["cost_usd"]
    breakdown = {k: v for k, v in out.cost_breakdown.items() if k != "other_calls"}
    other = round(out.cost_usd - sum(breakdown.values()), 10)
    if other > 0:
        breakdown["other_calls"] = other
    out.cost_breakdown = breakdown
