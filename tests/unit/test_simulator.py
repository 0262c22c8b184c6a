"""The LLM simulator driven by the real ``openai`` client over real HTTP."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import socket
import threading
import time
from enum import StrEnum

import jsonschema
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel, Field, ValidationError

from steer_llm_sdk.testing import SimulatorServer

pytest_plugins = ["steer_llm_sdk.testing.pytest_plugin"]

MESSAGES = [
    {"role": "system", "content": "You are a careful analyst."},
    {"role": "user", "content": "Did the new onboarding flow improve week-one retention?"},
]


class Verdict(StrEnum):
    yes = "yes"
    no = "no"
    unclear = "unclear"


class Evidence(BaseModel):
    source: str = Field(min_length=3, max_length=40)
    weight: float = Field(ge=0, le=1)


class Analysis(BaseModel):
    verdict: Verdict
    score: int = Field(ge=1, le=10)
    effect: float = Field(gt=-1, lt=1)
    significant: bool
    evidence: list[Evidence] = Field(min_length=1, max_length=4)
    notes: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=3)


def schema_format(model: type[BaseModel]) -> dict:
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "schema": model.model_json_schema(),
                        "strict": False},
    }


@pytest.fixture
def sim(llm_simulator: SimulatorServer) -> SimulatorServer:
    llm_simulator.reset()
    return llm_simulator


@pytest.fixture
def client(sim: SimulatorServer):
    with OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0, timeout=5) as c:
        yield c


@pytest.fixture
async def aclient(sim: SimulatorServer):
    async with AsyncOpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0,
                           timeout=5) as c:
        yield c


def ask(client: OpenAI, model: str = "gpt-4o-mini", seed: int | None = 1, **kwargs):
    return client.chat.completions.create(model=model, messages=MESSAGES, seed=seed, **kwargs)


# -- endpoints & content -----------------------------------------------------------------------
def test_models_list(client: OpenAI) -> None:
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert "gpt-4o-mini" in ids
    assert all(m.object == "model" for m in models.data)


def test_unknown_path_is_openai_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.get("/nope", cast_to=object)
    error = info.value.body
    assert isinstance(error, dict) and {"message", "type", "code"} <= set(error)


async def test_plain_completion_deterministic_per_seed(aclient: AsyncOpenAI) -> None:
    async def content(seed: int) -> str:
        r = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                  seed=seed)
        assert r.object == "chat.completion" and r.model == "gpt-4o-mini"
        assert r.choices[0].finish_reason == "stop" and r.choices[0].message.role == "assistant"
        assert r.usage.prompt_tokens >= 1 and r.usage.completion_tokens >= 1
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
        return r.choices[0].message.content

    first = [await content(s) for s in range(8)]
    again = [await content(s) for s in range(8)]
    assert first == again
    assert len(set(first)) >= 4

    def distance(a: str, b: str) -> float:
        x, y = set(a.lower().split()), set(b.lower().split())
        return 1 - len(x & y) / len(x | y)

    mean = sum(distance(a, b) for a, b in itertools.combinations(first, 2)) / 28
    assert 0.15 < mean < 0.7


def test_model_faults_are_stripped_from_response_model(client: OpenAI) -> None:
    r = ask(client, model="gpt-4o-mini+latency=0.01")
    assert r.model == "gpt-4o-mini"
    assert r.choices[0].message.content == ask(client).choices[0].message.content


def test_json_schema_output_validates(client: OpenAI) -> None:
    parsed = []
    for seed in range(12):
        r = ask(client, seed=seed, response_format=schema_format(Analysis))
        raw = r.choices[0].message.content
        jsonschema.validate(json.loads(raw), Analysis.model_json_schema())
        parsed.append(Analysis.model_validate_json(raw))
        assert raw == ask(client, seed=seed, response_format=schema_format(Analysis)
                          ).choices[0].message.content
    scores = [a.score for a in parsed]
    assert len(set(scores)) > 1, "replicates should vary"
    assert max(scores.count(s) for s in set(scores)) >= 2, "replicates should partly agree"
    assert len({a.effect for a in parsed}) > 1


def parse_helper(client: OpenAI):
    """openai's structured-output helper: ``chat.completions.parse`` from 1.92, under ``beta``
    before (same behaviour); pyproject.toml supports openai from 1.55.3."""
    completions = client.chat.completions
    return getattr(completions, "parse", None) or client.beta.chat.completions.parse


def test_parse_helper_with_strict_schema(client: OpenAI) -> None:
    completion = parse_helper(client)(
        model="gpt-4o-mini", messages=MESSAGES, seed=3, response_format=Analysis
    )
    assert isinstance(completion.choices[0].message.parsed, Analysis)


def test_request_id_echoed_and_stream_rejected(client: OpenAI) -> None:
    assert ask(client, extra_headers={"X-Request-ID": "req-echo"})._request_id == "req-echo"
    assert ask(client)._request_id.startswith("req_")
    with pytest.raises(openai.BadRequestError, match="stream"):
        ask(client, stream=True)


def test_json_object_mode(client: OpenAI) -> None:
    r = ask(client, response_format={"type": "json_object"})
    data = json.loads(r.choices[0].message.content)
    assert set(data) == {"answer", "confidence"} and 0 <= data["confidence"] <= 1


# -- faults ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "exc_class"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (422, openai.UnprocessableEntityError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (502, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_status_fault_raises_matching_error(client: OpenAI, status: int, exc_class) -> None:
    with pytest.raises(exc_class) as info:
        ask(client, model=f"gpt-4o-mini+status={status}")
    assert info.value.status_code == status
    assert set(info.value.body) >= {"message", "type", "code"}


def test_rate_limit_retry_after_seconds(client: OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        ask(client, model="gpt-4o-mini+status=429+retry_after=7")
    assert info.value.response.headers["retry-after"] == "7"


def test_retry_after_as_http_date_from_header_fault(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        ask(client, extra_headers={"X-Sim-Fault": "status=503;retry_after_date=30"})
    value = info.value.response.headers["retry-after"]
    assert value.endswith("GMT")


def test_retry_after_not_added_to_other_statuses(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        ask(client, model="gpt-4o-mini+status=500+retry_after=7")
    assert "retry-after" not in info.value.response.headers


def test_drop_is_connection_error(client: OpenAI, sim: SimulatorServer) -> None:
    with pytest.raises(openai.APIConnectionError) as info:
        ask(client, model="gpt-4o-mini+drop")
    assert not isinstance(info.value, openai.APITimeoutError)
    assert sim.stats.records[-1].outcome == "dropped"


async def test_hang_exceeds_client_timeout(sim: SimulatorServer) -> None:
    async with AsyncOpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0,
                           timeout=0.3) as short:
        with pytest.raises(openai.APITimeoutError):
            await short.chat.completions.create(model="gpt-4o-mini+hang=3", messages=MESSAGES)
    for _ in range(40):  # the server notices the hang-up within one sleep slice
        if sim.stats.records[-1].outcome != "pending":
            break
        await asyncio.sleep(0.025)
    assert sim.stats.records[-1].outcome == "client_gone"


def test_malformed_body_raises_json_decode_error(client: OpenAI) -> None:
    # openai 3.x calls response.json() on an application/json body without wrapping the error.
    with pytest.raises(json.JSONDecodeError):
        ask(client, model="gpt-4o-mini+malformed")


def test_content_filter(client: OpenAI) -> None:
    r = ask(client, model="gpt-4o-mini+content_filter")
    assert r.choices[0].finish_reason == "content_filter"
    assert r.choices[0].message.content == ""
    with pytest.raises(openai.ContentFilterFinishReasonError):
        parse_helper(client)(model="gpt-4o-mini+content_filter", messages=MESSAGES,
                             response_format=Analysis)


def test_invalid_json_content_even_in_schema_mode(client: OpenAI) -> None:
    r = ask(client, model="gpt-4o-mini+invalid_json_content",
            response_format=schema_format(Analysis))
    assert r.choices[0].finish_reason == "stop"
    with pytest.raises(ValidationError):
        Analysis.model_validate_json(r.choices[0].message.content)


def test_unknown_fault_is_bad_request(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="unknown simulator fault"):
        ask(client, model="gpt-4o-mini+explode")


def test_fail_n_then_success_per_seed(client: OpenAI, sim: SimulatorServer) -> None:
    model = "gpt-4o-mini+fail=2:503"
    for seed in (1, 2):
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                ask(client, model=model, seed=seed)
        assert ask(client, model=model, seed=seed).model == "gpt-4o-mini"
    for seed in (1, 2):
        assert [r.status for r in sim.requests_for(seed=seed)] == [503, 503, 200]
    assert sim.stats.requests_by_model == {"gpt-4o-mini": 6}
    # X-Sim-Key gives an independent counter; reset() clears counters
    with pytest.raises(openai.InternalServerError):
        ask(client, model=model, seed=1, extra_headers={"X-Sim-Key": "other"})
    sim.reset()
    with pytest.raises(openai.InternalServerError):
        ask(client, model=model, seed=1)
    assert sim.stats.total_requests == 1


def test_real_client_retries_through_fail_fault(sim: SimulatorServer) -> None:
    with OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=3) as retrying:
        r = ask(retrying, model="gpt-4o-mini+fail=2:429+retry_after=0.01", seed=9)
    assert r.choices[0].finish_reason == "stop"
    records = sim.requests_for(seed=9)
    assert [r.status for r in records] == [429, 429, 200]
    assert [r.headers["x-stainless-retry-count"] for r in records] == ["0", "1", "2"]


def test_latency_fault(client: OpenAI) -> None:
    started = time.perf_counter()
    ask(client, extra_headers={"X-Sim-Fault": "latency=0.2"})
    assert time.perf_counter() - started >= 0.2


async def test_fifty_concurrent_requests_are_not_serialised(
    aclient: AsyncOpenAI, sim: SimulatorServer
) -> None:
    started = time.perf_counter()
    results = await asyncio.gather(*[
        aclient.chat.completions.create(model="gpt-4o-mini+latency=0.2", messages=MESSAGES,
                                        seed=i)
        for i in range(50)
    ])
    elapsed = time.perf_counter() - started
    assert len(results) == 50 and elapsed < 3.0
    assert elapsed >= 0.2
    assert sim.stats.requests_by_model["gpt-4o-mini"] == 50


# -- observability -----------------------------------------------------------------------------
def test_records_keep_headers_of_interest_but_never_the_key(sim: SimulatorServer) -> None:
    secret = "sk-very-secret-value-123"
    with OpenAI(base_url=sim.base_url, api_key=secret, max_retries=0) as c:
        ask(c, extra_headers={"X-Request-ID": "req-1", "X-Trace-ID": "trace-1",
                              "X-Sim-Key": "k1"})
    (record,) = sim.requests_for(x_trace_id="trace-1")
    assert record.request_id == "req-1" and record.sim_key == "k1"
    assert record.authorization_present is True
    assert record.status == 200 and record.model == "gpt-4o-mini" and record.seed == 1
    assert record.path == "/v1/chat/completions" and record.duration_s is not None
    assert sim.requests_for(headers={"X-Request-ID": "req-1"}) == [record]
    assert secret not in repr(sim.stats.records) and secret not in repr(vars(sim.stats))
    assert "authorization" not in record.headers


def test_authorization_absent_is_recorded_as_false(sim: SimulatorServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    body = json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES})
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    assert conn.getresponse().status == 200
    conn.close()
    assert sim.stats.records[-1].authorization_present is False


# -- lifecycle ---------------------------------------------------------------------------------
def _sim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "steer-llm-simulator"]


def test_start_stop_fast_and_clean() -> None:
    before = len(_sim_threads())
    started = time.perf_counter()
    sim = SimulatorServer().start()
    assert time.perf_counter() - started < 0.3
    port = sim.port
    with OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0) as c:
        ask(c)
    started = time.perf_counter()
    sim.stop()
    assert time.perf_counter() - started < 0.5
    assert len(_sim_threads()) == before
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        pass
    sim.stop()  # idempotent


async def test_async_context_manager_stops_with_request_in_flight() -> None:
    before = len(_sim_threads())
    async with SimulatorServer() as sim:
        assert sim.base_url.startswith("http://127.0.0.1:") and sim.base_url.endswith("/v1")
        c = AsyncOpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0, timeout=5)
        pending = asyncio.ensure_future(
            c.chat.completions.create(model="gpt-4o-mini+hang=10", messages=MESSAGES))
        await asyncio.sleep(0.1)
    with pytest.raises(openai.APIConnectionError):
        await pending
    await c.close()
    assert len(_sim_threads()) == before
