"""Seeded randomness with a per-prompt "central tendency".

Replicate-based analyses need answers that behave like a real model's: replicates of one question
(same prompt, different ``seed``) should mostly agree yet differ in details, while different
questions should get different answers. So every random choice is split in two streams:

* ``center(path)`` is seeded by the prompt only: it decides *what this question tends to answer*
  (the favourite enum value, where in a numeric range the answer sits, whether booleans lean
  true or false);
* ``noise(path)`` is seeded by prompt + seed: it decides *how this replicate deviates*.

Both are keyed by a ``path`` (e.g. the JSON pointer of a schema field) so fields are independent
and adding a field to a schema does not reshuffle the values of the others.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def stable_hash(*parts: Any) -> int:
    """64-bit hash of JSON-able parts; unlike ``hash()`` it is stable across processes."""
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.blake2b(raw.encode(), digest_size=8).digest(), "big")


class Draw:
    """Random streams for one request; see the module docstring."""

    def __init__(self, prompt_key: Any, seed: int | None) -> None:
        self._prompt = stable_hash("prompt", prompt_key)
        self._replicate = stable_hash("replicate", self._prompt, seed)

    def center(self, path: str) -> random.Random:
        return random.Random(stable_hash(self._prompt, path))

    def noise(self, path: str) -> random.Random:
        return random.Random(stable_hash(self._replicate, path))

    def unit(self, path: str, spread: float = 0.12) -> float:
        """A value in [0, 1]: a prompt-specific centre in [0.3, 0.7] plus replicate noise."""
        middle = 0.3 + 0.4 * self.center(path).random()
        value = self.noise(path).gauss(middle, spread)
        return min(1.0, max(0.0, value))

    def coin(self, path: str, majority: float = 0.8) -> bool:
        """A boolean that is the prompt's preferred value ``majority`` of the time."""
        preferred = self.center(path).random() < 0.5
        return preferred if self.noise(path).random() < majority else not preferred

    def pick(self, path: str, options: Sequence[T], favourite_weight: float = 0.6) -> T:
        """One option: the prompt's favourite with ``favourite_weight``, else a weighted other."""
        if not options:
            raise ValueError("pick() needs at least one option")
        if len(options) == 1:
            return options[0]
        center = self.center(path)
        order = list(range(len(options)))
        center.shuffle(order)
        rest = 1.0 - favourite_weight
        # Geometric tail: the runner-up is likelier than the rest, as with real models.
        weights = [favourite_weight] + [rest * 0.5**i for i in range(1, len(order))]
        total = sum(weights)
        roll = self.noise(path).random() * total
        for index, weight in zip(order, weights, strict=True):
            roll -= weight
            if roll <= 0:
                return options[index]
        return options[order[-1]]


def approx_tokens(text: str) -> int:
    """Deterministic token estimate: ``ceil(words * 4 / 3)``, at least 1."""
    return max(1, math.ceil(len(text.split()) * 4 / 3))
