"""Deployments of the orchestration flow (schedules, parameters, serving).

Names load lazily so ``python -m deployments.serve`` runs the module once, and importing the
package does not pay for Prefect until a name is used.
"""

from typing import TYPE_CHECKING, Any

__all__ = [
    "DAILY_DEPLOYMENT",
    "FLOW_NAME",
    "INTERVAL_DEPLOYMENT",
    "build_deployments",
    "deployed_flow",
    "example_parameters",
    "results_dir",
    "serve_deployments",
]

if TYPE_CHECKING:
    from steer_llm_sdk.deployments.serve import (
        DAILY_DEPLOYMENT,
        FLOW_NAME,
        INTERVAL_DEPLOYMENT,
        build_deployments,
        deployed_flow,
        example_parameters,
        results_dir,
        serve_deployments,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from steer_llm_sdk.deployments import serve

        return getattr(serve, name)
    raise AttributeError(f"module 'deployments' has no attribute {name!r}")
