"""Provider rate limits on Prefect global concurrency limits, against the session's real
Prefect API and the simulator over HTTP: the simulator never sees more than the limit in any
window, concurrency is capped, waiting is bounded by the run's deadline, unset costs nothing."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from steer_llm_sdk.errors import BudgetExceeded
from steer_llm_sdk.providers.openai_provider import OpenAIProvider
from steer_llm_sdk.reliability import rate_limits
from steer_llm_sdk.reliability.rate_limits import (
    adelete_provider_limit,
    alist_provider_limits,
    aset_provider_limit,
    limit_names,
    rate_shape,
)

pytestmark = pytest.mark.usefixtures("prefect_backend")
MESSAGES = [{"role": "user", "content": "hi"}]


def _provider(sim) -> OpenAIProvider:
    # A unique provider name per test: limits live on the shared session server.
    return OpenAIProvider(api_key="sk-sim", base_url=sim.base_url,
                          name=f"rl{uuid.uuid4().hex[:6]}")


def _max_in_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u - t < window_s) for i, t in enumerate(times)),
               default=0)


def test_rate_shape_admits_at_most_r_per_window():
    # burst + decay * window == R: 500/min -> 9 at once, then 491/60 per second
    assert rate_shape(500) == (9, pytest.approx(491 / 60))
    assert rate_shape(4, window_s=6) == (1, pytest.approx(0.5))
    with pytest.raises(ValueError, match="rpm must be >= 1"):
        rate_shape(0)


async def test_requests_per_window_never_exceed_the_limit(llm_simulator):
    provider = _provider(llm_simulator)
    limit = await aset_provider_limit(provider.breaker_name, rpm=4, window_s=2)
    assert (limit.burst, limit.rpm) == (2, pytest.approx(62.0))  # 2 + 1 per s * 60
    llm_simulator.reset()  # tests run one at a time: every record below is ours
    try:
        await asyncio.gather(*(provider.complete(MESSAGES, "gpt-4o-mini") for _ in range(6)))
    finally:
        await adelete_provider_limit(provider.breaker_name)
    seen = [r.received_at for r in llm_simulator.stats.records]
    assert len(seen) == 6
    assert _max_in_window(seen, 2.0) <= 4


async def test_concurrency_limit_caps_requests_in_flight(llm_simulator):
    provider = _provider(llm_simulator)
    model = "gpt-4o-mini+latency=0.3"
    await aset_provider_limit(provider.breaker_name, concurrency=1)
    llm_simulator.reset()
    try:
        await asyncio.gather(*(provider.complete(MESSAGES, model) for _ in range(2)))
    finally:
        await adelete_provider_limit(provider.breaker_name)
    spans = sorted((r.received_at, r.received_at + (r.duration_s or 0))
                   for r in llm_simulator.stats.records)
    assert len(spans) == 2
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


async def test_waiting_is_bounded_by_the_deadline(llm_simulator):
    provider = _provider(llm_simulator)
    await aset_provider_limit(provider.breaker_name, rpm=1, window_s=600)
    try:
        await provider.complete(MESSAGES, "gpt-4o-mini")  # takes the only slot
        with pytest.raises(BudgetExceeded) as info:
            await provider.complete(MESSAGES, "gpt-4o-mini", deadline=time.monotonic() + 1.0)
    finally:
        await adelete_provider_limit(provider.breaker_name)
    assert info.value.budget_type == "time"
    assert "waiting" in str(info.value) and "steer limits set" in str(info.value)


async def test_per_model_limits_and_listing(llm_simulator):
    provider = _provider(llm_simulator)
    await aset_provider_limit(provider.breaker_name, rpm=500, concurrency=20)
    await aset_provider_limit(provider.breaker_name, model="gpt-4o", concurrency=2)
    try:
        listed = {(x.provider, x.model): x for x in await alist_provider_limits()}
        whole = listed[(provider.breaker_name, None)]
        assert (whole.rpm, whole.concurrency) == (pytest.approx(500), 20)
        assert listed[(provider.breaker_name, "gpt-4o")].concurrency == 2
    finally:
        await adelete_provider_limit(provider.breaker_name)
        await adelete_provider_limit(provider.breaker_name, model="gpt-4o")
    names = {x.provider for x in await alist_provider_limits()}
    assert provider.breaker_name not in names
    with pytest.raises(ValueError, match="must not contain '~'"):
        limit_names("a~b")


async def test_unset_limits_are_read_once_per_process_not_per_call(llm_simulator, monkeypatch):
    reads = []
    real = rate_limits._read_all

    async def counting(client):
        reads.append(1)
        return await real(client)

    monkeypatch.setattr(rate_limits, "_read_all", counting)
    rate_limits.forget_cached_limits()
    provider = _provider(llm_simulator)
    for _ in range(4):
        await provider.complete(MESSAGES, "gpt-4o-mini")
    assert len(reads) == 1


def test_cli_sets_and_lists_limits():
    from typer.testing import CliRunner

    from steer_llm_sdk.cli import app

    runner = CliRunner()
    provider = f"cli{uuid.uuid4().hex[:6]}"
    result = runner.invoke(app, ["limits", "set", provider, "--rpm", "500",
                                 "--concurrency", "20"])
    assert result.exit_code == 0, result.output
    assert "rpm 500/min" in result.stdout and "concurrency 20" in result.stdout
    listed = runner.invoke(app, ["limits", "ls"])
    assert provider in listed.stdout
    assert runner.invoke(app, ["limits", "delete", provider]).exit_code == 0
    assert provider not in runner.invoke(app, ["limits", "ls"]).stdout
