"""What a person reads in the evidence artifacts, and the replicate values the next run reads
back (rendering only: no Prefect server)."""

from __future__ import annotations

from steer_llm_sdk.flows.artifacts import (
    confidence_line,
    drift_rows,
    evidence_rows,
    question_text,
    samples_from_rows,
    summary_markdown,
)
from steer_llm_sdk.flows.evidence import analysis_key

from steer_llm_sdk.output import OrchestrationOutput
from steer_tools.evidence import BundleMetadata, EvidenceBundle
from steer_tools.statistics import summarize
from steer_tools.statistics.drift import bundle_samples, compare_samples
from tests.helpers.replicates import reps

SCHEMA = {"type": "object", "properties": {
    "score": {"type": "integer", "minimum": 0, "maximum": 10},
    "risks": {"type": "array", "items": {"type": "string"}}}}
DATAS = [
    {"feasible": True, "score": 6, "risks": ["thin team", "scope creep"]},
    {"feasible": True, "score": 8, "risks": ["scope creep", "thin team", "vendor"]},
    {"feasible": True, "score": 7, "risks": ["scope creep"]},
]


def bundle() -> EvidenceBundle:
    replicates = reps(*DATAS)
    for r in replicates:
        r.model = "gpt-4o-mini"
    return EvidenceBundle(
        meta=BundleMetadata(task="feasibility", k=3, k_completed=3, model="gpt-4o-mini",
                            seeds=[0, 1, 2]),
        replicates=replicates, summary=summarize(replicates, schema=SCHEMA))


def output(b: EvidenceBundle) -> OrchestrationOutput:
    return OrchestrationOutput(content=b.model_dump(mode="json"), status="succeeded",
                               metadata={"tool_name": "feasibility", "tool_version": "1.2.0",
                                         "trace_id": "t-1"})


def test_summary_shows_question_model_confidence_agreement_and_previous_run():
    b = bundle()
    question = question_text({"query": "Ship for ACME   in a week?\nReally?"},
                             lambda d: {**d, "query": d["query"].replace("ACME", "[client]")})
    assert question == "Ship for [client] in a week? Really?"
    previous = {"id": "run-1", "name": "feasibility-abc", "url": "http://ui/runs/flow-run/run-1"}
    later = bundle_samples([{**d, "score": 1} for d in DATAS] * 3)
    drift = compare_samples(bundle_samples([r.data for r in b.replicates] * 3), later)
    text = summary_markdown(output(b), b, question=question, previous=previous, drift=drift)
    assert "`feasibility` v1.2.0" in text and "**Question**: Ship for [client]" in text
    assert "- **model**: gpt-4o-mini" in text and "- **status**: succeeded" in text
    assert "**replicates**: 3 of 3 (3 valid), k=3" in text
    assert "[feasibility-abc](http://ui/runs/flow-run/run-1); drift in `score`" in text
    assert "| `feasible` | true |" in text  # agreed value
    assert "| `risks` | scope creep | 3 of 3" in text  # majority item with its support
    assert "| `risks` | thin team | 2 of 3" in text
    assert "CI of the median [6, 8] (exact coverage 75.0%, integer)" in text
    # the confidence line: the number and its two factors
    m = b.summary.pairwise_distance
    mean = (m[0][1] + m[0][2] + m[1][2]) / 3
    line = confidence_line(b)
    assert line.startswith(f"{b.summary.confidence:.3f} = validity 1.000 (3/3 valid) × "
                           f"agreement {1 - mean:.3f}")
    assert "most disagreement: risks" in line
    first = summary_markdown(output(b), b, question=None, previous=None)
    assert "none (first completed run of this analysis)" in first


def test_replicate_values_round_trip_through_the_fields_table():
    b = bundle()
    samples = bundle_samples([r.data for r in b.valid_replicates])
    rows = evidence_rows(b, samples)
    assert [r["field"] for r in rows] == ["feasible", "risks", "score"]
    assert rows[1]["agreement"] == "partly"  # scope creep agreed, the lists differ
    assert samples_from_rows(rows) == samples
    assert samples["risks"]["values"][2] == ["scope creep"]


def test_drift_rows_and_analysis_key():
    before = bundle_samples([{"score": v} for v in (1, 2, 3, 4, 5)])
    after = bundle_samples([{"score": v} for v in (6, 7, 8, 9, 10)])
    (row,) = drift_rows(compare_samples(before, after))
    assert row == {"field": "score", "before": "median 3 (n=5)", "after": "median 8 (n=5)",
                   "test": "mann-whitney", "p": round(2 / 252, 6), "p_holm": round(2 / 252, 6),
                   "significant": "yes"}
    assert analysis_key("t", {"a": 1, "b": 2}) == analysis_key("t", {"b": 2, "a": 1})
    assert analysis_key("t", {"a": 1}) != analysis_key("u", {"a": 1})
    assert len(analysis_key("t", {"a": 1})) == 16
