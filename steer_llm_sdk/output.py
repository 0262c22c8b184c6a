"""OrchestrationOutput: what every orchestration returns, succeeded, partial or failed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["succeeded", "partial", "failed"]


class OrchestrationOutput(BaseModel):
    content: Any = None
    usage: dict[str, int] = Field(default_factory=dict)
    cost_usd: float | None = None
    cost_breakdown: dict[str, float] = Field(default_factory=dict)
    elapsed_ms: float = 0.0
    per_agent: dict[str, dict[str, Any]] = Field(default_factory=dict)
    status: Status = "succeeded"
    errors: dict[str, dict[str, Any]] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def evidence_bundle(self) -> Any:
        """The content as an EvidenceBundle when a bundle tool answered, else None."""
        from steer_tools.evidence import EvidenceBundle

        if isinstance(self.content, dict) and "meta" in self.content and "summary" in self.content:
            return EvidenceBundle.model_validate(self.content)
        bundle = self.content.get("bundle") if isinstance(self.content, dict) else None
        return EvidenceBundle.model_validate(bundle) if isinstance(bundle, dict) else None


def output_from_result(result: str | dict[str, Any]) -> OrchestrationOutput:
    """The orchestration flow's return value (JSON string, or dict from older runs / a Failed
    state) as an OrchestrationOutput."""
    if isinstance(result, str):
        return OrchestrationOutput.model_validate_json(result)
    return OrchestrationOutput.model_validate(result)
