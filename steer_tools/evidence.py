"""Evidence Bundle models, shaped as the 0.3.2 release notes document them.

A bundle is K replicates of the same analysis plus what the engine concluded from them:
where they agree (consensus), where they do not (disagreements), how far apart they are
(pairwise distances), numeric distributions, and one confidence number in [0, 1].
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from steer_llm_sdk.input_models import InputModel


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class ReplicateQuality(BaseModel):
    valid: bool = True
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    schema_version: str | None = None


class Replicate(BaseModel):
    id: str = Field(description='"r1", "r2", ... in seed order')
    data: Any = None
    quality: ReplicateQuality = Field(default_factory=ReplicateQuality)
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    elapsed_ms: float = 0.0
    seed: int | None = Field(None, description="None when the provider call took no seed")
    model: str | None = None


class Disagreement(BaseModel):
    field: str
    values: list[Any]
    replicate_ids: list[str]


class BundleSummary(BaseModel):
    consensus: dict[str, Any] | None = Field(
        None,
        description="field path -> agreed value; {} when they agree on nothing, None when "
        "there are no valid replicates",
    )
    disagreements: list[Disagreement] = Field(default_factory=list)
    pairwise_distance: list[list[float]] = Field(
        default_factory=list, description="K_valid x K_valid matrix, 0 identical .. 1 different"
    )
    distributions: dict[str, dict[str, Any]] = Field(default_factory=dict)
    confidence: float = Field(0.0, ge=0.0, le=1.0)
    truncated: bool = False
    truncation_info: dict[str, Any] | None = None


class BundleMetadata(BaseModel):
    task: str
    k: int
    k_completed: int | None = Field(
        None, description="Replicates that ran; filled from len(replicates) when omitted"
    )
    model: str | None = None
    seeds: list[int]
    early_stopped: bool = False
    early_stop_reason: str | None = None
    total_elapsed_ms: float = 0.0
    schema_uri: str | None = None


class EvidenceBundle(BaseModel):
    meta: BundleMetadata
    replicates: list[Replicate]
    summary: BundleSummary
    usage_total: Usage = Field(default_factory=Usage)
    cost_total_usd: float = 0.0
    cost_breakdown: dict[str, float] = Field(
        default_factory=dict, description="replicate id -> USD"
    )
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fill_k_completed(self) -> EvidenceBundle:
        """0.3.2 bundles omit k_completed; every replicate in the bundle did run."""
        if self.meta.k_completed is None:
            self.meta.k_completed = len(self.replicates)
        return self

    @property
    def valid_replicates(self) -> list[Replicate]:
        return [r for r in self.replicates if r.quality.valid]


class BundleLimits(InputModel):
    """Caps that keep a bundle readable; exceeding one sets summary.truncated."""

    max_fields: int = Field(1000, ge=1, description="Field paths kept in distributions/consensus")
    max_diffs: int = Field(100, ge=0, description="Disagreements listed")
    max_bytes: int = Field(1_000_000, ge=1024, description="Serialised summary size cap")
