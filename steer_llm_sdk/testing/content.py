"""What the simulated model "says": plain text, ``json_object`` and ``json_schema`` content.

Everything is a pure function of (model, messages, seed, response_format), so a test can assert
exact equality across runs, while different seeds give replicates that agree on the gist and
differ in wording (plain-text token-set distances between seeds land around 0.2-0.6), which is
what replicate-agreement and clustering code needs to be exercised meaningfully.
"""

from __future__ import annotations

import json
import re
from typing import Any

from steer_llm_sdk.testing.randomness import Draw, approx_tokens
from steer_llm_sdk.testing.schema_values import generate_for_schema

OPENERS = (
    "The evidence points to",
    "Overall, the data suggest",
    "On balance, the analysis indicates",
    "Taken together, the signals show",
    "The most likely reading is",
    "A careful review suggests",
)
FINDINGS = (
    "a moderate positive effect",
    "a small but consistent improvement",
    "no meaningful difference between the options",
    "a clear advantage for the first option",
    "mixed results across segments",
    "a modest decline in the key metric",
    "strong support for the main hypothesis",
    "a weak association that may be noise",
)
DETAILS = (
    "Replicate runs broadly agree on the direction.",
    "The strongest signal comes from the most recent period.",
    "Outliers have only a limited effect on the conclusion.",
    "Two of the three indicators move together.",
    "The pattern holds after adjusting for seasonality.",
    "Smaller groups show noticeably wider variation.",
)
CAVEATS = (
    "The sample is limited, so confidence is moderate.",
    "Some uncertainty remains because key data are missing.",
    "Results may not generalise beyond the observed period.",
    "Confounding factors cannot be ruled out.",
    "Measurement noise could explain part of the pattern.",
    "The estimate is sensitive to the chosen baseline.",
)
RECOMMENDATIONS = (
    "A follow-up study with more data is recommended.",
    "Proceed cautiously and monitor the outcome closely.",
    "It would be reasonable to adopt the change incrementally.",
    "Further validation is advised before a final decision.",
    "Revisit the analysis once new data arrive.",
    "Compare against an independent benchmark before acting.",
)
STOPWORDS = frozenset((
    "about", "after", "also", "been", "before", "being", "better", "could", "does", "from",
    "have", "into", "more", "most", "over", "should", "than", "that", "their", "them", "then",
    "there", "these", "they", "this", "those", "what", "when", "where", "which", "while",
    "will", "with", "would", "your",
))
INVALID_JSON_CONTENT = '{"answer": "the model stopped mid-sentence, "confidence": 0.'


class ResponseFormatError(ValueError):
    """The request's ``response_format`` is unusable; answered with a 400 like OpenAI does."""


def message_text(message: Any) -> str:
    """Text of one chat message, whether ``content`` is a string or a list of parts."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    return approx_tokens(" ".join(message_text(m) for m in messages))


def completion_tokens(content: str) -> int:
    return approx_tokens(content)


def _topic(messages: list[Any]) -> str:
    """A few content words of the last user message, so answers visibly echo the question."""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    text = message_text(users[-1]) if users else ""
    words: list[str] = []
    for word in re.findall(r"[A-Za-z][A-Za-z\-]{3,}", text):
        if word.lower() not in words and word.lower() not in STOPWORDS:
            words.append(word.lower())
    return " ".join(words[:4])


def plain_text(draw: Draw, topic: str) -> str:
    """Four or five sentences; each slot keeps the prompt's favourite wording most of the time."""
    opener = draw.pick("opener", OPENERS, favourite_weight=0.75)
    finding = draw.pick("finding", FINDINGS, favourite_weight=0.85)
    about = f" on {topic}" if topic else ""
    sentences = [f"{opener} {finding}{about}."]
    if draw.coin("detail?", majority=0.75):
        sentences.append(draw.pick("detail", DETAILS, favourite_weight=0.75))
    sentences.append(draw.pick("caveat", CAVEATS, favourite_weight=0.8))
    sentences.append(draw.pick("recommendation", RECOMMENDATIONS, favourite_weight=0.8))
    sentences.append(f"Estimated confidence is {5 * round(4 + 14 * draw.unit('confidence'))}%.")
    return " ".join(sentences)


def _schema_of(response_format: dict[str, Any]) -> dict[str, Any]:
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
        raise ResponseFormatError("response_format.json_schema must be an object with 'schema'")
    if "name" not in spec:
        raise ResponseFormatError("Missing required parameter: 'response_format.json_schema.name'.")
    return spec.get("schema", {})


def generate_content(
    model: str, messages: list[Any], seed: int | None, response_format: Any, variant: str = ""
) -> str:
    """The assistant message content for a request (fault-free path); a non-empty ``variant``
    makes the "model" answer the same prompts differently (a model update, for drift tests)."""
    key = {"model": model, "messages": messages, "response_format": response_format}
    if variant:
        key["variant"] = variant
    draw = Draw(key, seed)
    kind = response_format.get("type", "text") if isinstance(response_format, dict) else "text"
    if kind == "json_schema":
        try:
            value = generate_for_schema(_schema_of(response_format), draw)
        except ResponseFormatError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ResponseFormatError(f"Invalid schema for response_format: {exc}") from exc
        return json.dumps(value)
    if kind == "json_object":
        confidence = round(0.5 + 0.45 * draw.unit("confidence"), 2)
        return json.dumps({"answer": draw.pick("answer", FINDINGS), "confidence": confidence})
    if kind != "text":
        raise ResponseFormatError(f"Invalid value for response_format.type: {kind!r}")
    return plain_text(draw, _topic(messages))
