"""Every random choice of an experiment, derived from what it is for, never from history.

A stream is a ``numpy.random.SeedSequence`` keyed by the seed and by what the randomness is
for: the split, the initial sample, the noisy oracle, the model of iteration ``i``, the
strategy's draw at iteration ``i``. No generator is carried from one iteration to the next,
so a run resumed at iteration 7 draws exactly what an uninterrupted run draws there, and a
run's results do not depend on which process runs it or in what order.

The split, the initial sample, the oracle's noise and the models do not depend on the
strategy: every strategy of a seed starts from the same labeled rows and is judged on the
same test rows, which makes the comparison between strategies a paired one.

Examples
--------
>>> a = stream(3, SAMPLER, 0, strategy_key("margin"), 5)
>>> b = stream(3, SAMPLER, 0, strategy_key("margin"), 5)
>>> int_seed(a) == int_seed(b), int_seed(a) == int_seed(stream(3, SAMPLER, 0, 0, 6))
(True, False)
"""

from __future__ import annotations

import hashlib

import numpy as np

# What a stream is for: the first key after the seed.
SPLIT = 1
INITIAL = 2
NOISE = 3
MODEL = 4
SAMPLER = 5
CONTRADICTIONS = 6
ORACLE = 7
HOLDOUT = 8


def stream(seed: int, purpose: int, *keys: int) -> np.random.SeedSequence:
    """The seed sequence for ``purpose`` under ``seed``, told apart by ``keys``."""
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(int(purpose), *map(int, keys)))


def generator(seed: int, purpose: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(stream(seed, purpose, *keys))


def int_seed(sequence: np.random.SeedSequence) -> int:
    """A non-negative 31-bit int for scikit-learn's ``random_state``."""
    return int(sequence.generate_state(1, dtype=np.uint32)[0] >> 1)


def strategy_key(name: str) -> int:
    """A stable 32-bit number for a strategy's label (Python's ``hash`` changes per process)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")


def half_key(half: int | None) -> int:
    """The split index as a stream key: 0 for a plain split, 1 + h for half ``h``."""
    return 0 if half is None else 1 + int(half)
