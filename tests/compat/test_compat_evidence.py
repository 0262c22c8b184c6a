"""Evidence models accept bundles built the 0.3.2 way (no seeds on replicates, no
k_completed), and k_completed is then filled from the replicates that are there."""

from __future__ import annotations

from steer_tools.evidence import (
    BundleMetadata,
    BundleSummary,
    EvidenceBundle,
    Replicate,
    ReplicateQuality,
)


def bundle_0_3_2() -> EvidenceBundle:
    replicates = [
        Replicate(id="r1", data={"result": "a"}, quality=ReplicateQuality(valid=True),
                  usage={"total_tokens": 100}),
        Replicate(id="r2", data={"result": "b"}, quality=ReplicateQuality(valid=True),
                  usage={"total_tokens": 150}),
    ]
    return EvidenceBundle(
        meta=BundleMetadata(task="test", k=2, model="mock-model", seeds=[11, 23]),
        replicates=replicates,
        summary=BundleSummary(confidence=0.85, disagreements=[]),
        usage_total={"total_tokens": 250},
        cost_total_usd=0.001,
    )


def test_replicate_seed_is_optional():
    assert Replicate(id="r1").seed is None
    assert Replicate(id="r1", seed=7).seed == 7


def test_k_completed_is_optional_and_filled_from_the_replicates():
    bundle = bundle_0_3_2()
    assert bundle.meta.k_completed == 2
    assert bundle.usage_total.total_tokens == 250
    three = bundle.model_copy(deep=True)
    three.replicates.append(Replicate(id="r3"))
    again = EvidenceBundle.model_validate(
        {**three.model_dump(), "meta": {**three.meta.model_dump(), "k_completed": None}})
    assert again.meta.k_completed == 3
    explicit = BundleMetadata(task="t", k=5, k_completed=4, seeds=[])
    assert EvidenceBundle(meta=explicit, replicates=[], summary=BundleSummary()
                          ).meta.k_completed == 4  # a value given is kept
