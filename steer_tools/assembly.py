"""Replicates -> EvidenceBundle. Shared by the engine's statistics task and BundleTool.execute,
so a bundle means the same thing however it was produced."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from steer_tools.evidence import BundleMetadata, EvidenceBundle, Replicate, Usage
from steer_tools.statistics import summarize

if TYPE_CHECKING:
    from steer_tools.bundle import BundleOptions, BundleTool


def assemble_bundle(
    tool: BundleTool,
    replicates: list[Replicate],
    options: BundleOptions,
    *,
    elapsed_ms: float,
    early_stopped: bool = False,
    early_stop_reason: str | None = None,
) -> EvidenceBundle:
    summary = summarize(replicates, epsilon=options.epsilon, limits=options.bundle_limits,
                        list_mode=options.list_mode, schema=tool.replicate_schema(options))
    usage = Usage()
    for rep in replicates:
        usage = usage + rep.usage
    models = Counter(r.model for r in replicates if r.model)
    bundle = EvidenceBundle(
        meta=BundleMetadata(
            task=tool.name,
            k=options.k,
            k_completed=len(replicates),
            model=models.most_common(1)[0][0] if models else None,
            seeds=[r.seed for r in replicates if r.seed is not None],
            early_stopped=early_stopped,
            early_stop_reason=early_stop_reason,
            total_elapsed_ms=round(elapsed_ms, 3),
            schema_uri=options.schema_uri,
        ),
        replicates=replicates,
        summary=summary,
        usage_total=usage,
        cost_total_usd=round(sum(r.cost_usd for r in replicates), 10),
        cost_breakdown={r.id: r.cost_usd for r in replicates},
    )
    extra = tool.summarize(bundle)
    if extra:
        bundle.metadata["tool_summary"] = extra
    return bundle
