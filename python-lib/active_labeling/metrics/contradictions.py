"""How much the model's predictions change between two consecutive versions.

The contradiction ratio is computed on one fixed random sample of the pool, drawn once per
project (``sample_for_contradictions``) and reused for every model version, so that two
values differ because the model changed, not because the sample did.
"""

from __future__ import annotations

import numpy as np

from active_labeling.metrics._checks import (
    check_comparable_labels,
    check_labels,
    check_positive_int,
    check_same_length,
)
from active_labeling.samplers._validation import as_generator


def sample_for_contradictions(n_pool: int, size: int, random_state=None) -> np.ndarray:
    """The fixed random sample of the pool on which contradictions are measured.

    ``size`` positions drawn uniformly without replacement from ``range(n_pool)`` (all of
    them when the pool is smaller), returned sorted so that the rows can be read in pool
    order. The same ``random_state`` gives the same sample. Store the item ids it picks and
    reuse them for every model version.

    Parameters
    ----------
    n_pool : int
        Rows in the pool.
    size : int
        Rows wanted in the sample (10,000 gives a ratio within about ±1 point).
    random_state : None, int or numpy Generator

    Returns
    -------
    ndarray of int64, shape (min(size, n_pool),)

    Examples
    --------
    >>> idx = sample_for_contradictions(1_000_000, 5, random_state=0)
    >>> idx.shape, bool((np.diff(idx) > 0).all())
    ((5,), True)
    >>> np.array_equal(idx, sample_for_contradictions(1_000_000, 5, random_state=0))
    True
    >>> sample_for_contradictions(3, 10, random_state=0)
    array([0, 1, 2])
    """
    n_pool = check_positive_int(n_pool, "n_pool")
    size = check_positive_int(size, "size")
    rng = as_generator(random_state)
    if size >= n_pool:
        return np.arange(n_pool, dtype=np.int64)
    return np.sort(rng.choice(n_pool, size=size, replace=False).astype(np.int64))


def contradiction_ratio(previous_pred, current_pred) -> float:
    """Share of the sample whose predicted class changed between two model versions.

    ``C(t) = 1/|S| * sum_{x in S} 1[h_{t-1}(x) != h_t(x)]`` over the fixed sample ``S``
    (Abraham 2020; tutorial, "With independent unlabeled set: Contradiction ratio"). The
    gain in accuracy from ``t-1`` to ``t`` is at most ``C(t)``: near 0, the next labels are
    not expected to help much; flat but not near 0, the query strategy may be stuck.

    Parameters
    ----------
    previous_pred, current_pred : array-like of shape (n,)
        Classes predicted on the same sample rows, in the same order, by the previous and
        the current model version.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    One of four predictions changed:

    >>> contradiction_ratio(["a", "b", "b", "a"], ["a", "b", "a", "a"])
    0.25
    """
    previous = check_labels(previous_pred, "previous_pred")
    current = check_labels(current_pred, "current_pred")
    check_same_length(previous, current, "previous_pred", "current_pred")
    check_comparable_labels(previous, current, "previous_pred", "current_pred")
    return float(np.mean(previous != current))
