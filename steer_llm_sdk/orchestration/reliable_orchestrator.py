"""The 0.3.2 module path of ``ReliableOrchestrator`` (release notes: "orchestrator_v2.py ->
reliable_orchestrator.py"); the class lives in ``steer_llm_sdk.orchestration.reliable``."""

from steer_llm_sdk.orchestration.reliable import ReliableOrchestrator

__all__ = ["ReliableOrchestrator"]
