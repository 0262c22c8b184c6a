"""Simulator internals without the openai client: fault grammar, schema values, raw HTTP."""

from __future__ import annotations

import json
import socket
from collections import Counter
from enum import StrEnum
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from steer_llm_sdk.testing import FaultSpec, FaultSpecError, SimulatorServer
from steer_llm_sdk.testing.content import generate_content
from steer_llm_sdk.testing.faults import parse_header, split_model
from steer_llm_sdk.testing.randomness import Draw, approx_tokens
from steer_llm_sdk.testing.schema_values import generate_for_schema


# -- fault grammar -----------------------------------------------------------------------------
def test_model_name_grammar() -> None:
    base, spec = split_model("gpt-4o-mini+latency=0.2+fail=2:503+retry_after=1+drop")
    assert base == "gpt-4o-mini"
    assert spec == FaultSpec(latency=0.2, fail_count=2, fail_status=503, retry_after=1.0,
                             drop=True)
    assert spec.canonical() == "latency=0.2;fail=2:503;retry_after=1;drop"


def test_header_grammar_and_merge() -> None:
    header = parse_header("latency=0.1; status=429 ;content_filter")
    assert header == FaultSpec(latency=0.1, status=429, content_filter=True)
    merged = split_model("m+latency=1+malformed")[1].merged(header)
    assert merged == FaultSpec(latency=0.1, status=429, content_filter=True, malformed=True)
    assert parse_header(None).empty and split_model("plain")[1].empty


@pytest.mark.parametrize(
    "bad", ["nope", "latency=x", "latency=-1", "fail=2:200", "fail=a:503", "status=abc",
            "drop=1", "hang=inf"],
)
def test_bad_fault_tokens(bad: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_header(bad)


# -- content -----------------------------------------------------------------------------------
class Level(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class Node(BaseModel):
    label: str
    children: list[Node] = Field(default_factory=list)


class Finding(BaseModel):
    title: str = Field(min_length=20, max_length=25)
    level: Level
    kind: Literal["risk", "opportunity"]
    probability: float = Field(gt=0, lt=1)
    count: int = Field(ge=-5, lt=5)
    ratio: float | None = Field(default=None, ge=2.5)


class Report(BaseModel):
    findings: list[Finding] = Field(min_length=2, max_length=5)
    flags: dict[str, bool]
    tree: Node
    code: str = Field(max_length=3)
    amount: float = Field(multiple_of=0.25, ge=0, le=10)
    tags: set[str] = Field(max_length=4)
    pair: tuple[int, str]
    when: str | int | None


EXTRA_SCHEMAS = [
    {"type": "object", "properties": {"x": {"allOf": [{"$ref": "#/$defs/P"}],
                                            "description": "wrapped"}},
     "required": ["x"],
     "$defs": {"P": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 7,
                                                           "exclusiveMaximum": 9}},
                     "required": ["n"]}}},
    {"type": "object", "properties": {
        "d": {"type": "string", "format": "date-time"},
        "e": {"type": "string", "format": "email"},
        "u": {"type": "string", "format": "uuid"},
        "t": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 0.001},
        "c": {"const": 42},
        "a": {"type": "array", "items": {"enum": [1, 2, 3]}, "uniqueItems": True,
              "minItems": 3}},
     "required": ["d", "e", "u", "t", "c", "a"], "additionalProperties": False},
]


@pytest.mark.parametrize("schema", [Report.model_json_schema(), *EXTRA_SCHEMAS])
def test_schema_values_validate_for_many_seeds(schema: dict) -> None:
    checker = jsonschema.Draft202012Validator(schema,
                                              format_checker=jsonschema.FormatChecker())
    for seed in range(40):
        value = generate_for_schema(schema, Draw("prompt", seed))
        checker.validate(value)
    if schema is EXTRA_SCHEMAS[0]:
        assert value == {"x": {"n": 7}} or value == {"x": {"n": 8}}


def test_pydantic_round_trip() -> None:
    schema = Report.model_json_schema()
    for seed in range(20):
        Report.model_validate(generate_for_schema(schema, Draw("q", seed)))


def test_replicates_cluster_but_prompts_differ() -> None:
    schema = {"type": "object", "properties": {
        "ok": {"type": "boolean"}, "level": {"enum": ["a", "b", "c", "d"]},
        "score": {"type": "integer", "minimum": 0, "maximum": 100}},
        "required": ["ok", "level", "score"]}
    centers = set()
    for prompt in range(12):
        values = [generate_for_schema(schema, Draw(f"question {prompt}", s)) for s in range(60)]
        ok = Counter(v["ok"] for v in values).most_common(1)[0][1] / 60
        level = Counter(v["level"] for v in values).most_common(1)[0]
        scores = [v["score"] for v in values]
        assert 0.65 <= ok <= 0.95  # ~80% majority
        assert 0.4 <= level[1] / 60 <= 0.85 and len(set(scores)) > 5
        assert 20 <= sum(scores) / 60 <= 80
        centers.add((level[0], round(sum(scores) / 600)))
    assert len(centers) > 3


def test_content_is_a_pure_function_of_the_request() -> None:
    msgs = [{"role": "user", "content": [{"type": "text", "text": "Compare A and B"}]}]
    fmt = {"type": "json_object"}
    assert generate_content("m", msgs, 5, fmt) == generate_content("m", msgs, 5, fmt)
    assert generate_content("m", msgs, 5, None) != generate_content("m2", msgs, 5, None)
    assert approx_tokens("") == 1 and approx_tokens("one two three") == 4


# -- raw HTTP -----------------------------------------------------------------------------------
def _exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


def test_keep_alive_chunked_and_garbage() -> None:
    with SimulatorServer() as sim:
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        chunked = f"{len(body):x}\r\n{body}\r\n0\r\n\r\n".encode()
        raw = _exchange(sim.port, (
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n" + chunked
        ))
        assert raw.count(b"HTTP/1.1 200 OK") == 2 and b"chat.completion" in raw
        assert _exchange(sim.port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")
        bad_json = (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 3\r\n"
                    b"Connection: close\r\n\r\n{x}")
        assert _exchange(sim.port, bad_json).startswith(b"HTTP/1.1 400 Bad Request")
        assert sim.stats.total_requests == 3


def test_port_in_use_raises_on_start() -> None:
    with SimulatorServer() as first, pytest.raises(OSError):
        SimulatorServer(port=first.port).start()
