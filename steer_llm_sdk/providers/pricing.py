"""USD prices per 1M tokens, so every replicate's cost can be reported and budgeted.

Prices are OpenAI's published list prices for standard (non-batch, non-cached) usage as of
2026; they change, so users override them: ``set_price("my-model", input=0.5, output=1.5)``
or ``STEER_PRICING_JSON='{"my-model": [0.5, 1.5]}'``. An unknown model costs 0.0 and is
logged once, so a missing price is visible rather than silently wrong.
"""

from __future__ import annotations

import json
import logging
import os
import threading

from pydantic import BaseModel, Field

logger = logging.getLogger("steer_llm_sdk.pricing")


class ModelPrice(BaseModel):
    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)


DEFAULT_PRICES: dict[str, ModelPrice] = {
    name: ModelPrice(input_per_1m=i, output_per_1m=o)
    for name, (i, o) in {
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4o": (2.50, 10.00),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
        "o3": (2.00, 8.00),
        "o3-mini": (1.10, 4.40),
        "o4-mini": (1.10, 4.40),
        "gpt-5": (1.25, 10.00),
        "gpt-5-mini": (0.25, 2.00),
        "gpt-5-nano": (0.05, 0.40),
    }.items()
}

_overrides: dict[str, ModelPrice] = {}
_warned: set[str] = set()
_lock = threading.Lock()


def set_price(model: str, *, input: float, output: float) -> None:  # noqa: A002
    with _lock:
        _overrides[model] = ModelPrice(input_per_1m=input, output_per_1m=output)


def clear_overrides() -> None:
    with _lock:
        _overrides.clear()


def _env_prices() -> dict[str, ModelPrice]:
    raw = os.environ.get("STEER_PRICING_JSON")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        return {k: ModelPrice(input_per_1m=v[0], output_per_1m=v[1]) for k, v in data.items()}
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ValueError(
            "STEER_PRICING_JSON must map model -> [input_usd_per_1m, output_usd_per_1m], e.g. "
            f'{{"my-model": [0.5, 1.5]}}: {exc}'
        ) from exc


def price_for(model: str) -> ModelPrice | None:
    base = model.split("+", 1)[0]  # simulator fault suffixes are not part of the model
    base = base.split(":", 1)[-1]
    with _lock:
        if base in _overrides:
            return _overrides[base]
    env = _env_prices()
    if base in env:
        return env[base]
    if base in DEFAULT_PRICES:
        return DEFAULT_PRICES[base]
    # dated snapshots ("gpt-4o-mini-2024-07-18") price like their family
    family = max((n for n in DEFAULT_PRICES if base.startswith(n + "-")), key=len, default=None)
    return DEFAULT_PRICES[family] if family else None


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    price = price_for(model)
    if price is None:
        if model not in _warned:
            _warned.add(model)
            # a worker or `steer serve` process runs no user code before its runs: the
            # environment variable is the way to price a model there
            logger.warning("no price for model %r: cost reported as 0.0; set one with "
                           "steer_llm_sdk.providers.pricing.set_price, or (in a worker or "
                           "`steer serve` process) the environment: STEER_PRICING_JSON="
                           "'{\"%s\": [input_usd_per_1m, output_usd_per_1m]}'",
                           model, model.split("+", 1)[0].split(":", 1)[-1])
        return 0.0
    return round((prompt_tokens * price.input_per_1m
                  + completion_tokens * price.output_per_1m) / 1_000_000, 10)
