"""The 0.3.2 import path of ``ProviderError`` (``steer_llm_sdk.providers.base``); the class
lives in ``steer_llm_sdk.errors`` with the rest of the exception tree."""

from steer_llm_sdk.errors import ProviderError

__all__ = ["ProviderError"]
