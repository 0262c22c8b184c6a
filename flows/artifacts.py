"""Evidence Bundle as Prefect artifacts, so a run can be judged from the UI alone.

* ``evidence-summary`` (markdown): the question, tool and version, model, k, status, confidence
  with what drives it, agreed values, majority items of set fields, bounded intervals,
  disagreements, and the previous run of the same analysis with its drift;
* ``evidence-fields`` (table): one row per field, with the valid replicates' values (JSON):
  what the next run of the same analysis compares itself with (``flows/evidence.py``);
* ``evidence-drift`` (table): field, before, after, test, p, Holm-adjusted p, significant.

Rendering only: which runs to compare and the API calls live in ``flows/evidence.py``.
"""

from __future__ import annotations

import json
from typing import Any

from steer_llm_sdk.output import OrchestrationOutput
from steer_tools.statistics.drift import DriftRow
from steer_tools.statistics.intervals import interval_text

MAX_TABLE_ROWS = 200
MAX_SAMPLE_CHARS = 4000  # per field: a longer sample is stored truncated and not compared
QUESTION_CHARS = 300


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(value: Any, limit: int = 120) -> str:
    return _short(value, limit).replace("|", "/").replace("\n", " ")


def distribution_text(dist: dict[str, Any]) -> str:
    kind = dist.get("type")
    if kind == "numeric":
        std = "n/a" if dist["std"] is None else f"{dist['std']:.4g}"
        return f"median {dist['median']:.4g}, mean {dist['mean']:.4g}, sd {std}, " \
               + interval_text(dist)
    if kind == "set":
        n = dist["n"]
        items = ", ".join(f"{_short(i['item'], 40)} {i['support']}/{n}"
                          for i in dist["items"][:6])
        return f"items (support of {n}): {items}" + (" …" if len(dist["items"]) > 6 else "")
    if dist:
        low, high = dist.get("agreement_ci95") or [0.0, 1.0]
        return (f"mode {_short(dist.get('mode'), 40)}, agreement {dist.get('agreement'):.2f} "
                f"(Wilson 95% [{low:.2f}, {high:.2f}])")
    return ""


def evidence_rows(bundle: Any, samples: dict[str, dict[str, Any]] | None = None,
                  ) -> list[dict[str, Any]]:
    """One row per field; ``samples`` (``drift.bundle_samples``) adds ``type`` and ``values``
    (the valid replicates' values as JSON), read back by the next run of the analysis."""
    summary = bundle.summary
    samples = samples or {}
    consensus = summary.consensus or {}
    disagreeing = {d.field for d in summary.disagreements}
    fields = sorted(set(summary.distributions) | set(consensus) | disagreeing)
    rows = []
    for field in fields[:MAX_TABLE_ROWS]:
        row = {
            "field": field,
            "consensus": _short(consensus[field]) if field in consensus else "—",
            "distribution": distribution_text(summary.distributions.get(field, {})),
            "agreement": "yes" if field in consensus and field not in disagreeing else
                         "partly" if field in consensus else "no",
        }
        if field in samples:
            values = json.dumps(samples[field]["values"], ensure_ascii=False, default=str)
            row["type"] = samples[field]["type"]
            row["values"] = values if len(values) <= MAX_SAMPLE_CHARS else "(too long)"
        rows.append(row)
    return rows


def confidence_line(bundle: Any) -> str:
    """One line: the number, its two factors, and the fields that pull it down most."""
    summary = bundle.summary
    valid, total = len(bundle.valid_replicates), max(len(bundle.replicates), 1)
    matrix = summary.pairwise_distance
    pairs = [matrix[i][j] for i in range(len(matrix)) for j in range(i + 1, len(matrix))]
    mean = sum(pairs) / len(pairs) if pairs else 0.0
    drivers = sorted(((_spread(d), f) for f, d in summary.distributions.items()), reverse=True)
    top = [f"{f} ({s:.2f})" for s, f in drivers[:3] if s > 0]
    text = (f"{summary.confidence:.3f} = validity {valid / total:.3f} ({valid}/{total} valid) "
            f"× agreement {1 - mean:.3f} (1 − mean pairwise distance {mean:.3f})")
    return text + (f"; most disagreement: {', '.join(top)}" if top else "; replicates agree")


def _spread(dist: dict[str, Any]) -> float:
    """How much one field disagrees, on the distance's 0..1 scale."""
    kind = dist.get("type")
    if kind == "set":
        return float(dist.get("mean_jaccard_distance") or 0.0)
    if kind == "numeric":
        return min(float(dist.get("cv") or 0.0), 1.0)
    return 1.0 - float(dist.get("agreement", 1.0))


def question_text(request: dict[str, Any] | None, redactor: Any = None) -> str | None:
    """The request as a person reads it, after ``redactor_cb`` (applied to the request dict,
    the way it is applied to event payloads), truncated."""
    if not request:
        return None
    shown = dict(request)
    if redactor is not None:
        try:
            shown = redactor(shown)
        except Exception:  # a broken redactor must not leak the unredacted text
            return "(redactor failed: question hidden)"
    text = shown.get("query") if isinstance(shown.get("query"), str) else \
        json.dumps(shown, default=str, ensure_ascii=False)
    return _short(" ".join(str(text).split()), QUESTION_CHARS)


def summary_markdown(output: OrchestrationOutput, bundle: Any, *, question: str | None = None,
                     previous: dict[str, Any] | None = None,
                     drift: list[DriftRow] | None = None) -> str:
    meta, summary = bundle.meta, bundle.summary
    tool = output.metadata.get("tool_name") or meta.task
    version = output.metadata.get("tool_version")
    lines = [f"## Evidence bundle: `{tool}`" + (f" v{version}" if version else ""), ""]
    if question:
        lines += [f"> **Question**: {question.replace(chr(10), ' ')}", ""]
    lines += [
        f"- **status**: {output.status}",
        f"- **model**: {meta.model or 'n/a'}",
        f"- **confidence**: {confidence_line(bundle)}",
        f"- **replicates**: {meta.k_completed} of {meta.k} "
        f"({len(bundle.valid_replicates)} valid), k={meta.k}"
        + (f"; early stop: {meta.early_stop_reason}" if meta.early_stopped else ""),
        f"- **tokens**: {bundle.usage_total.total_tokens}",
        f"- **cost**: ${bundle.cost_total_usd:.6f}",
        f"- **trace id**: `{output.metadata.get('trace_id')}`",
        f"- **previous run**: {_previous_text(previous, drift)}",
        "",
    ]
    lines += _agreed(summary) + _majorities(summary) + _numbers(summary)
    if summary.disagreements:
        lines += ["### Disagreements", "", "| field | values |", "|---|---|"]
        lines += [f"| `{d.field}` | {_cell(d.values)} |" for d in summary.disagreements[:50]]
    elif summary.consensus is not None:
        lines.append("All valid replicates agree on every field.")
    return "\n".join(lines)


def _previous_text(previous: dict[str, Any] | None, drift: list[DriftRow] | None) -> str:
    if previous is None:
        return "none (first completed run of this analysis)"
    link = f"[{previous['name']}]({previous['url']})" if previous.get("url") else \
        f"`{previous['name']}` ({previous['id']})"
    changed = list(dict.fromkeys(r.field for r in drift or [] if r.significant))
    return link + (f"; drift in {', '.join(f'`{c}`' for c in changed)} (see evidence-drift)"
                   if changed else "; no significant drift")


def _agreed(summary: Any) -> list[str]:
    agreed = summary.consensus or {}
    if not agreed:
        return []
    lines = ["### Agreed values", "", "| field | value |", "|---|---|"]
    lines += [f"| `{f}` | {_cell(v)} |" for f, v in list(agreed.items())[:50]]
    return [*lines, ""]


def _majorities(summary: Any) -> list[str]:
    sets = {f: d for f, d in summary.distributions.items() if d.get("type") == "set"}
    if not sets:
        return []
    lines = ["### Majority items (set fields)", "", "| field | item | support |", "|---|---|---|"]
    for field, dist in sets.items():
        majority = [i for i in dist["items"] if i["support"] * 2 > dist["n"]]
        for item in majority[:20]:
            low, high = item["share_ci95"]
            lines.append(f"| `{field}` | {_cell(item['item'])} | {item['support']} of "
                         f"{dist['n']} (Wilson 95% {low:.2f}–{high:.2f}) |")
        if not majority:
            lines.append(f"| `{field}` | (no item in more than half) | |")
    return [*lines, ""]


def _numbers(summary: Any) -> list[str]:
    numeric = {f: d for f, d in summary.distributions.items() if d.get("type") == "numeric"}
    if not numeric:
        return []
    lines = ["### Numeric fields", "", "| field | median | interval |", "|---|---|---|"]
    lines += [f"| `{f}` | {d['median']:.4g} | {interval_text(d)} |"
              for f, d in list(numeric.items())[:50]]
    return [*lines, ""]


def samples_from_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The samples stored in ``evidence_rows`` (fields stored truncated are left out)."""
    samples = {}
    for row in rows:
        if not isinstance(row, dict) or "type" not in row:
            continue
        try:
            values = json.loads(row["values"])
        except (KeyError, TypeError, ValueError):
            continue
        if isinstance(values, list):
            samples[row["field"]] = {"type": row.get("type"), "values": values}
    return samples


def drift_rows(rows: list[DriftRow]) -> list[dict[str, Any]]:
    out = []
    for row in rows[:MAX_TABLE_ROWS]:
        field = row.field if row.item is None else f"{row.field}: {_short(row.item, 60)}"
        out.append({
            "field": field, "before": row.before, "after": row.after, "test": row.test,
            "p": None if row.p is None else round(row.p, 6),
            "p_holm": None if row.p_holm is None else round(row.p_holm, 6),
            "significant": "yes" if row.significant else "no",
        })
    return out
