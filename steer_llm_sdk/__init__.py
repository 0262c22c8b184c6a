"""steer-llm-sdk: LLM analyses as observable, reliable, schedulable Prefect workflows.

Imports are lazy so ``import steer_llm_sdk`` stays cheap; Prefect loads on first use of the
orchestration API.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.4.0"
__all__ = ["SteerLLMClient", "__version__"]

if TYPE_CHECKING:
    from steer_llm_sdk.client import SteerLLMClient


def __getattr__(name: str) -> Any:
    if name == "SteerLLMClient":
        from steer_llm_sdk.client import SteerLLMClient

        return SteerLLMClient
    raise AttributeError(f"module 'steer_llm_sdk' has no attribute {name!r}")
