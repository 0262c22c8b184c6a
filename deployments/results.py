"""How deployed runs store their result: the OrchestrationOutput itself, as plain JSON.

The orchestration flow returns its output as JSON text (a string costs Prefect less to walk
than a dict; flows/orchestrate.py). Prefect's default serializer would cloudpickle that string;
its "json" serializer would store it as a JSON *string* (``"{\\"content\\": ...}"``). Used as
that serializer's ``jsonlib``, this module writes JSON-object text unchanged, so the result file
is the output document (``jq . <file>``), and loading it gives the parsed object, which
``output_from_result`` takes like the string. Nothing is decoded into classes (the serializer
has no object hook), so reading a stored result never imports or runs anything.

Results stored by earlier versions (pickle) still load: Prefect keeps each result's serializer
in its state, and reads the file with that one.
"""

from __future__ import annotations

import json
from typing import Any

# Module path given to prefect's JSONSerializer(jsonlib=...); readers import it by this name.
JSONLIB = "steer_llm_sdk.deployments.results"


def dumps(obj: Any, **kwargs: Any) -> str:
    """JSON text of ``obj``; a string that already is a JSON object is written as it is."""
    if isinstance(obj, str) and obj.lstrip().startswith("{"):
        try:
            if isinstance(json.loads(obj), dict):
                return obj
        except ValueError:
            pass
    return json.dumps(obj, **kwargs)


def loads(text: str | bytes, **kwargs: Any) -> Any:
    return json.loads(text, **kwargs)


def result_serializer() -> Any:
    """The serializer of :func:`steer_llm_sdk.deployments.serve.deployed_flow`."""
    from prefect.serializers import JSONSerializer

    return JSONSerializer(jsonlib=JSONLIB, object_encoder=None, object_decoder=None)
