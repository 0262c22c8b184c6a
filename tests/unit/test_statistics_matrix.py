"""The vectorised distance matrix against a naive, independently written reference.

The production code batches tokenisation and uses sparse matrices for speed; these tests
pin it to the plain definition on random mixed data and on tokenisation edge cases.
"""

from __future__ import annotations

import math
import random
import re

import pytest

from steer_tools.statistics import pairwise_distance_matrix, replicate_distance

_MISSING = object()


def _tokens(text):
    return set(re.findall(r"\w+", text.lower()))


def _is_num(v):
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _field(a, b):
    if a is _MISSING and b is _MISSING:
        return None
    if a is _MISSING or b is _MISSING:
        return 1.0
    if _is_num(a) and _is_num(b):
        scale = max(abs(a), abs(b))
        return 0.0 if scale == 0 else min(abs(a - b) / scale, 1.0)
    if isinstance(a, str) and isinstance(b, str):
        ta, tb = _tokens(a), _tokens(b)
        return 0.0 if not (ta | tb) else 1 - len(ta & tb) / len(ta | tb)
    return 0.0 if type(a) is type(b) and a == b else 1.0


def _naive(a, b):
    """Flat dicts only: mean field distance over the union of keys."""
    keys = set(a) | set(b)
    if not keys:
        return 0.0
    return sum(_field(a.get(k, _MISSING), b.get(k, _MISSING)) for k in keys) / len(keys)


WORDS = ["alpha", "Beta", "gamma,", "delta.", "épée", "Straße", "x_y", "42", "it's", ""]


def _random_replicate(rnd):
    data = {}
    for i in range(30):
        if rnd.random() < 0.15:
            continue  # field missing in this replicate
        kind = i % 5
        if kind == 0:
            data[f"n{i}"] = rnd.choice([0, 0.0, 1, -3, 2.5, 10, 1e6])
        elif kind == 1:
            data[f"s{i}"] = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 5)))
        elif kind == 2:
            data[f"b{i}"] = rnd.choice([True, False, None])
        elif kind == 3:
            data[f"m{i}"] = rnd.choice([1, 2.0, "one", None, True, "1"])
        else:
            data[f"x{i}"] = rnd.choice([1, 2, None])  # nullable number
    return data


@pytest.mark.parametrize("seed", range(20))
def test_matrix_equals_naive_definition(seed):
    rnd = random.Random(seed)
    datas = [_random_replicate(rnd) for _ in range(rnd.randint(2, 7))]
    matrix = pairwise_distance_matrix(datas)
    for i, a in enumerate(datas):
        for j, b in enumerate(datas):
            expected = 0.0 if i == j else _naive(a, b)
            assert matrix[i][j] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("Straße IST groß", "strasse ist GROSS", 1 - 1 / 5),  # {straße,ist,groß} vs {strasse,..}
        ("ÉPÉE, épée!", "épée", 0.0),  # non-ASCII lower-casing, punctuation dropped
        ("a\x1eb", "a b", 0.0),  # a text holding the internal separator still works
        ("snake_case words", "snake case", 1 - 0 / 4),  # "_" is a word character
        ("don't", "don t", 0.0),  # apostrophe splits like the regex does
        ("...", "", 0.0),  # no tokens on either side
    ],
)
def test_tokenisation_edge_cases(a, b, expected):
    assert replicate_distance(a, b) == pytest.approx(expected)
    many = pairwise_distance_matrix([a, b, a])
    assert many[0][1] == pytest.approx(expected) and many[0][2] == 0.0
