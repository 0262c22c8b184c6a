"""LLM providers: the OpenAI SDK provider, pricing, model ids."""

from steer_llm_sdk.providers.models import Completion, split_model_id
from steer_llm_sdk.providers.openai_provider import OpenAIProvider
from steer_llm_sdk.providers.pricing import cost_usd, price_for, set_price

__all__ = ["Completion", "OpenAIProvider", "cost_usd", "price_for", "set_price",
           "split_model_id"]
