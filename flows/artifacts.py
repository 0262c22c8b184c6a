"""Evidence Bundle as Prefect artifacts, so a run can be judged from the UI alone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from steer_llm_sdk.output import OrchestrationOutput

MAX_TABLE_ROWS = 200


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def evidence_rows(bundle: Any) -> list[dict[str, Any]]:
    summary = bundle.summary
    consensus = summary.consensus or {}
    disagreements = {d.field: d for d in summary.disagreements}
    fields = sorted(set(summary.distributions) | set(consensus) | set(disagreements))
    rows = []
    for field in fields[:MAX_TABLE_ROWS]:
        dist = summary.distributions.get(field, {})
        if dist.get("type") == "numeric":
            std = "n/a" if dist["std"] is None else f"{dist['std']:.4g}"
            detail = (f"mean {dist['mean']:.4g}, sd {std}, "
                      f"95% CI [{dist['ci95'][0]:.4g}, {dist['ci95'][1]:.4g}]")
        elif dist:
            detail = f"mode {_short(dist.get('mode'), 40)}, agreement {dist.get('agreement'):.2f}"
        else:
            detail = ""
        rows.append({
            "field": field,
            "consensus": _short(consensus[field]) if field in consensus else "—",
            "distribution": detail,
            "agreement": "yes" if field in consensus else "no",
        })
    return rows


def summary_markdown(output: OrchestrationOutput, bundle: Any) -> str:
    meta, summary = bundle.meta, bundle.summary
    lines = [
        f"## Evidence bundle: `{meta.task}`",
        "",
        f"- **status**: {output.status}",
        f"- **confidence**: {summary.confidence:.3f}",
        f"- **replicates**: {meta.k_completed} of {meta.k} "
        f"({len(bundle.valid_replicates)} valid)"
        + (f"; early stop: {meta.early_stop_reason}" if meta.early_stopped else ""),
        f"- **tokens**: {bundle.usage_total.total_tokens}",
        f"- **cost**: ${bundle.cost_total_usd:.6f}",
        f"- **trace id**: `{output.metadata.get('trace_id')}`",
        "",
    ]
    if summary.disagreements:
        lines += ["### Disagreements", "", "| field | values |", "|---|---|"]
        for d in summary.disagreements[:50]:
            lines.append(f"| `{d.field}` | {_short(d.values, 120).replace('|', '/')} |")
    else:
        lines.append("All valid replicates agree on every field.")
    return "\n".join(lines)


async def publish_artifacts(output: OrchestrationOutput) -> None:
    bundle = output.evidence_bundle
    if bundle is None:
        return
    rows = evidence_rows(bundle)
    writes = [acreate_markdown_artifact(markdown=summary_markdown(output, bundle),
                                        key="evidence-summary",
                                        description="Evidence bundle summary")]
    if rows:
        writes.append(acreate_table_artifact(table=rows, key="evidence-fields",
                                             description="Evidence bundle: per-field agreement"))
    await asyncio.gather(*writes)  # two independent API writes: one round trip, not two
