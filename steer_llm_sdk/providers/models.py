"""Provider-neutral request/response shapes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


def split_model_id(model_id: str) -> tuple[str, str]:
    """"openai:gpt-4o-mini" -> ("openai", "gpt-4o-mini"); a bare name means openai."""
    provider, sep, model = model_id.partition(":")
    if not sep:
        return "openai", model_id
    if not model:
        raise ValueError(f"model id {model_id!r} has no model after ':'; e.g. openai:gpt-4o-mini")
    return provider, model


class Completion(BaseModel):
    content: str
    model: str
    finish_reason: str | None = None
    usage: dict[str, int] = Field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    )
    cost_usd: float = 0.0
    response_id: str | None = None
    raw_headers: dict[str, Any] = Field(default_factory=dict)
