"""LLMBundleTool: a ready bundle tool, one provider call per replicate, no subclassing needed.

    tool = LLMBundleTool(
        name="feasibility", model="openai:gpt-4o-mini",
        system="You are a careful analyst.",
        user_template="Assess the feasibility of: {query}",
        output_schema=Feasibility,  # a pydantic model or a JSON schema dict
    )
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from steer_llm_sdk.providers import OpenAIProvider, split_model_id
from steer_llm_sdk.validation import check_json_schema, check_number, check_template
from steer_tools.bundle import BundleOptions, BundleTool, ReplicateContext, ReplicateOutput
from steer_tools.evidence import ReplicateQuality, Usage


def _template_fields(template: str) -> set[str]:
    """Request fields the template uses; literal braces must be written {{ }} (checked here,
    when the tool is built, not when the first request fails to format)."""
    return check_template("user_template", template)


class LLMBundleTool(BundleTool):
    eager_start = True  # one provider call per replicate, no Prefect context needed

    def __init__(
        self,
        name: str,
        model: str,
        system: str,
        user_template: str,
        output_schema: type[BaseModel] | dict[str, Any] | None = None,
        *,
        temperature: float = 0.7,
        max_tokens: int | None = None,
        description: str = "",
        version: str = "1.0.0",
        k: int = 3,
        provider: OpenAIProvider | None = None,
        schema_name: str | None = None,
    ) -> None:
        provider_name, self.model_name = split_model_id(model)
        if provider_name != "openai":
            raise ValueError(
                f"model {model!r}: provider {provider_name!r} is not supported; use "
                "'openai:<model>' (any OpenAI-compatible server works via OPENAI_BASE_URL)"
            )
        check_number("temperature", temperature, minimum=0.0, maximum=2.0)
        check_number("k", k, minimum=2, maximum=50, integer=True)
        if max_tokens is not None:
            check_number("max_tokens", max_tokens, minimum=1, integer=True)
        self.name = name
        self.version = version
        self.description = description or f"{model} bundle: {user_template[:60]}"
        self.model = model
        self.system = system
        self.user_template = user_template
        self.template_fields = _template_fields(user_template)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.default_k = k
        self.llm = provider or OpenAIProvider()
        self.provider = self.llm.breaker_name
        if isinstance(output_schema, type) and issubclass(output_schema, BaseModel):
            self.output_model = output_schema
            self.output_schema = output_schema.model_json_schema()
            self.schema_name = schema_name or output_schema.__name__
        else:
            self.output_model = None
            self.output_schema = check_json_schema("output_schema", output_schema)
            self.schema_name = schema_name or f"{name}_output"

    def validate_request(self, request: dict[str, Any]) -> None:
        super().validate_request(request)
        missing = sorted(f for f in self.template_fields if f not in request)
        if missing:
            raise ValueError(
                f"request is missing field(s) {missing} used by tool {self.name!r}'s "
                f"user_template; add them, e.g. {{{', '.join(repr(m) + ': ...' for m in missing)}}}"
            )

    def messages(self, request: dict[str, Any]) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user_template.format(**request)},
        ]

    def response_format(self) -> dict[str, Any] | None:
        if self.output_schema is None:
            return None
        return {"type": "json_schema", "json_schema": {
            "name": self.schema_name[:64], "schema": self.output_schema, "strict": False}}

    async def run_replicate(self, request: dict[str, Any], seed: int,
                            context: ReplicateContext) -> ReplicateOutput:
        completion = await self.llm.complete(
            self.messages(request),
            self.model_name,
            temperature=0.0 if context.deterministic else self.temperature,
            seed=seed,
            max_tokens=self.max_tokens,
            response_format=self.response_format(),
            trace_id=context.trace_id,
            request_id=context.request_id,
            replicate_id=context.replicate_id,
            deadline=context.deadline_monotonic,
            breaker_config=context.breaker_config,
        )
        usage = Usage(**completion.usage)
        quality = None
        data: Any = completion.content
        if self.output_schema is not None:
            try:
                data = json.loads(completion.content)
            except ValueError as exc:
                quality = ReplicateQuality(
                    valid=False, errors=[f"<root>: content is not valid JSON ({exc})"])
        return ReplicateOutput(data=data, usage=usage, cost_usd=completion.cost_usd,
                               model=completion.model, quality=quality)

    def validate_replicate(self, data: Any, options: BundleOptions) -> ReplicateQuality:
        if self.output_schema is None:
            ok = isinstance(data, str) and bool(data.strip())
            return ReplicateQuality(valid=ok, errors=[] if ok else ["<root>: empty answer"])
        return super().validate_replicate(data, options)
