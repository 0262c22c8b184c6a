"""An unpriced model's warning must be actionable where it shows up most: in a worker or
`steer serve` process, where no user code runs to call set_price."""

from __future__ import annotations

import json
import logging
import re
import uuid

from steer_llm_sdk.providers.pricing import cost_usd


def test_warning_names_the_environment_variable_with_a_value_that_works(caplog, monkeypatch):
    monkeypatch.delenv("STEER_PRICING_JSON", raising=False)
    model = f"local-llm-{uuid.uuid4().hex[:6]}"
    with caplog.at_level(logging.WARNING, logger="steer_llm_sdk.pricing"):
        assert cost_usd(f"openai:{model}+latency=0.1", 1000, 1000) == 0.0
    (message,) = [r.getMessage() for r in caplog.records if "no price for model" in r.message]
    assert "set_price" in message and "STEER_PRICING_JSON=" in message
    suggested = re.search(r"STEER_PRICING_JSON='(.*)'", message).group(1)
    example = suggested.replace("input_usd_per_1m", "0.5").replace("output_usd_per_1m", "1.5")
    assert json.loads(example) == {model: [0.5, 1.5]}
    monkeypatch.setenv("STEER_PRICING_JSON", example)  # what the user pastes, priced at once
    assert cost_usd(f"openai:{model}", 1_000_000, 1_000_000) == 2.0
