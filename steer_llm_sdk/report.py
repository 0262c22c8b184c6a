"""Human-readable text for an OrchestrationOutput (the demo and `steer run` print it)."""

from __future__ import annotations

import json
from typing import Any

from steer_llm_sdk.output import OrchestrationOutput
from steer_tools.statistics.intervals import interval_text


def _fmt(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def format_report(out: OrchestrationOutput, *, ui_url: str | None = None) -> str:
    meta = out.metadata
    lines = [f"Status: {out.status}   tool: {meta.get('tool_name')}   "
             f"flow run: {meta.get('flow_run_id')}"]
    bundle = out.evidence_bundle
    if bundle is None:
        lines.append(f"Content: {_fmt(out.content)}")
    else:
        summary, bmeta = bundle.summary, bundle.meta
        valid = len(bundle.valid_replicates)
        lines.append(f"Replicates: {bmeta.k_completed} of k={bmeta.k} ({valid} valid), "
                     f"model {bmeta.model}, seeds {bmeta.seeds}")
        if bmeta.early_stopped:
            lines.append(f"Early stop: {bmeta.early_stop_reason}")
        lines.append(f"Confidence: {summary.confidence:.3f}  (validity x (1 - mean pairwise "
                     "distance))")
        lines.append("Consensus:")
        sets = {f: d for f, d in summary.distributions.items() if d.get("type") == "set"}
        for field, value in (summary.consensus or {}).items():
            note = "   (items in every valid replicate)" if field in sets else ""
            lines.append(f"  {field} = {_fmt(value)}{note}")
        if not summary.consensus:
            lines.append("  (no field agreed across all valid replicates)")
        if sets:
            lines.append("Majority items (in more than half of the valid replicates):")
            for field, d in sets.items():
                items = [f"{_fmt(i['item'])} ({i['support']} of {d['n']})"
                         for i in d["items"] if i["support"] * 2 > d["n"]]
                lines.append(f"  {field}: {'; '.join(items) or '(none)'}")
        lines.append("Disagreements:")
        for d in summary.disagreements[:15]:
            lines.append(f"  {d.field}: {', '.join(_fmt(v) for v in d.values)}")
        if not summary.disagreements:
            lines.append("  (none)")
        numeric = {f: d for f, d in summary.distributions.items() if d.get("type") == "numeric"}
        if numeric:
            lines.append("Distributions (numeric):")
            for field, d in numeric.items():
                std = "n/a" if d.get("std") is None else f"{d['std']:.3g}"
                lines.append(f"  {field}: median {d['median']:.3g}, mean {d['mean']:.3g}, "
                             f"sd {std}, n={d['n']}; {interval_text(d)}")
    usage = out.usage or {}
    lines.append(f"Tokens: {usage.get('total_tokens', 0)} (prompt {usage.get('prompt_tokens', 0)}"
                 f", completion {usage.get('completion_tokens', 0)})   "
                 f"cost: ${out.cost_usd or 0:.6f}   "
                 f"analysis: {out.elapsed_ms:.0f} ms (in the flow run, not Prefect's start-up)")
    if out.errors:
        lines.append("Errors:")
        for name, err in out.errors.items():
            lines.append(f"  {name}: {err.get('message')}")
    lines.append(f"Trace id: {meta.get('trace_id')}   request id: {meta.get('request_id')}")
    if ui_url:
        lines.append(f"Inspect in the Prefect UI: {ui_url}")
    return "\n".join(lines)
