"""The durable replicate cache key: one record per (run, tool version, request, options, seed,
replicate). A replicate must never be served another replicate's, request's or tool's result."""

from __future__ import annotations

from steer_llm_sdk.tasks.durable import replicate_cache_key, tool_fingerprint

from steer_llm_sdk.providers import OpenAIProvider
from steer_tools.llm_bundle import LLMBundleTool


def _tool(**changes) -> LLMBundleTool:
    kwargs = {"name": "t", "model": "openai:gpt-4o-mini", "system": "Answer.",
              "user_template": "{query}", "provider": OpenAIProvider(api_key="sk-x",
                                                                     base_url="http://x/v1")}
    return LLMBundleTool(**{**kwargs, **changes})




def _key(tool=None, run="run-1", request=None, options=None, seed=1, rid="r1") -> str:
    return replicate_cache_key(run, tool or _tool(), request or {"query": "q"},
                               options or {"k": 3}, seed, rid)


def test_same_inputs_same_key() -> None:
    assert _key() == _key()  # a resumed run finds its record (a new tool object, same config)
    assert _key().startswith("steer-replicate-")


def test_every_input_changes_the_key() -> None:
    base = _key()
    variants = [
        _key(run="run-2"),  # another idempotency key / flow run
        _key(tool=_tool(version="1.0.1")),  # another tool version
        _key(tool=_tool(system="Answer briefly.")),  # another prompt, same version
        _key(tool=_tool(name="u")),  # another tool
        _key(request={"query": "other"}),
        _key(options={"k": 3, "_deterministic": True}),
        _key(seed=2),  # another replicate's seed
        _key(rid="r2"),  # another replicate id
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_fingerprint_ignores_objects_but_not_settings() -> None:
    a = _tool(provider=OpenAIProvider(api_key="sk-a", base_url="http://a/v1"))
    b = _tool(provider=OpenAIProvider(api_key="sk-b", base_url="http://a/v1"))
    assert tool_fingerprint(a) == tool_fingerprint(b)  # the provider object is not a setting
    assert tool_fingerprint(a) != tool_fingerprint(_tool(temperature=0.1))


def test_a_tool_may_define_its_fingerprint() -> None:
    tool = _tool()
    tool.fingerprint = lambda: "v7"  # type: ignore[attr-defined]
    assert tool_fingerprint(tool) == "v7"
