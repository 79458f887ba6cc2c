"""Informativeness scores computed from a probability matrix, in pure NumPy.

Each function takes ``proba`` of shape (n, k), one row per sample and one column per
class, and returns n floats in [0, 1]: higher means more informative. They hold no state
and never see the features, so a pool can be scored chunk by chunk. They never return NaN.
"""

from __future__ import annotations

import numpy as np

from active_labeling.errors import InputError
from active_labeling.samplers.multilabel_scores import (
    MULTI_LABEL_SCORE_CORES,
    MULTI_LABEL_SCORE_FUNCTIONS,
)

#: How far a row's sum may stray from 1 before it is rejected.
ROW_SUM_TOLERANCE = 1e-6


def check_proba(proba, what: str = "proba") -> np.ndarray:
    """Validate a probability matrix and return it as a 2-D float array.

    Raises
    ------
    InputError
        If ``proba`` is not 2-D, holds a negative or non-finite value, or has a row whose
        sum differs from 1 by more than ``ROW_SUM_TOLERANCE``. The message names the row.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise InputError(f"{what} must be 2-D (samples x classes), got shape {proba.shape}")
    if proba.shape[1] == 0:
        raise InputError(f"{what} has no class column")
    # A matrix-vector product: much faster than a reduction along a short axis.
    row_sums = proba @ np.ones(proba.shape[1])
    bad = ~(np.abs(row_sums - 1.0) <= ROW_SUM_TOLERANCE)  # also catches NaN
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{what} row {i} sums to {float(row_sums[i])!r}, not 1 "
            f"(tolerance {ROW_SUM_TOLERANCE}): pass class probabilities, such as the output "
            "of predict_proba"
        )
    if proba.size and proba.min() < 0:
        i = int(np.flatnonzero((proba < 0).any(axis=1))[0])
        raise InputError(f"{what} row {i} holds a negative probability")
    return proba


#: Up to this many classes, row maxima run column by column (numpy reduces a short axis
#: slowly); above it, ``np.partition`` along the rows is faster.
_COLUMNWISE_MAX_CLASSES = 32


def _top_two(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The largest and second largest probability of each row (0 when k = 1)."""
    k = proba.shape[1]
    if k > _COLUMNWISE_MAX_CLASSES:
        top = np.partition(proba, k - 2, axis=1)
        return top[:, k - 1], top[:, k - 2]
    p1 = proba[:, 0].copy()
    p2 = np.zeros_like(p1)
    smaller = np.empty_like(p1)
    for j in range(1, k):
        column = proba[:, j]
        np.minimum(p1, column, out=smaller)
        np.maximum(p2, smaller, out=p2)
        np.maximum(p1, column, out=p1)
    return p1, p2


def least_confidence(proba) -> np.ndarray:
    """Least-confidence score ``U = 1 - p1``, with p1 the largest probability of a row.

    Parameters
    ----------
    proba : array-like of shape (n, k)
        Class probabilities; each row sums to 1.

    Returns
    -------
    ndarray of shape (n,)
        Scores in [0, 1]; higher means less confident, so more informative.

    Examples
    --------
    >>> least_confidence([[0.9, 0.1], [0.5, 0.5], [1.0, 0.0]])
    array([0.1, 0.5, 0. ])
    """
    return _least_confidence(check_proba(proba))


def _least_confidence(proba: np.ndarray) -> np.ndarray:
    k = proba.shape[1]
    if k > _COLUMNWISE_MAX_CLASSES:
        p1 = proba.max(axis=1)
    else:
        p1 = proba[:, 0].copy()
        for j in range(1, k):
            np.maximum(p1, proba[:, j], out=p1)
    return np.clip(1.0 - p1, 0.0, 1.0)


def margin(proba) -> np.ndarray:
    """Margin score ``M = 1 - (p1 - p2)``, with p1 >= p2 the two largest probabilities.

    With a single class (k = 1) p2 is taken as 0, so the score is 0.

    Parameters
    ----------
    proba : array-like of shape (n, k)
        Class probabilities; each row sums to 1.

    Returns
    -------
    ndarray of shape (n,)
        Scores in [0, 1]; 1 when the two best classes tie.

    Examples
    --------
    >>> margin([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0]])
    array([0.5, 1. , 0. ])
    """
    return _margin(check_proba(proba))


def _margin(proba: np.ndarray) -> np.ndarray:
    p1, p2 = _top_two(proba)
    return np.clip(1.0 - (p1 - p2), 0.0, 1.0)


def entropy(proba) -> np.ndarray:
    """Normalized Shannon entropy ``H = -sum p log p / log k``.

    Zero probabilities contribute 0 (the limit of p log p); with k = 1 the score is 0.

    Parameters
    ----------
    proba : array-like of shape (n, k)
        Class probabilities; each row sums to 1.

    Returns
    -------
    ndarray of shape (n,)
        Scores in [0, 1]; 1 for the uniform distribution.

    Examples
    --------
    >>> entropy([[0.5, 0.5], [1.0, 0.0]])
    array([1., 0.])
    >>> entropy([[0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]])
    array([1. , 0.5])
    """
    return _entropy(check_proba(proba))


def _entropy(proba: np.ndarray) -> np.ndarray:
    k = proba.shape[1]
    if k == 1:
        return np.zeros(proba.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(proba > 0, proba * np.log(proba), 0.0)
    # "+ 0.0" turns the -0.0 of a certain row into 0.0.
    return np.clip(-plogp.sum(axis=1) / np.log(k), 0.0, 1.0) + 0.0


#: The score functions by name, as the recipes and the samplers refer to them.
SCORE_FUNCTIONS = {
    "least_confidence": least_confidence,
    "margin": margin,
    "entropy": entropy,
}


#: The same, without the input check: for matrices that ``check_proba`` already passed.
_SCORE_CORES = {
    "least_confidence": _least_confidence,
    "margin": _margin,
    "entropy": _entropy,
}


def get_score_function(name: str, *, checked: bool = False):
    """The score function called ``name``: one of ``SCORE_FUNCTIONS`` (class probabilities
    of a single-label model), or ``mean_binary`` / ``max_binary`` (the independent binary
    probabilities of a multi-label model, :mod:`~active_labeling.samplers.multilabel_scores`).

    With ``checked=True``, the version that trusts its input: samplers validate the
    classifier's probabilities once, then score them.
    """
    functions = (
        {**_SCORE_CORES, **MULTI_LABEL_SCORE_CORES}
        if checked
        else {**SCORE_FUNCTIONS, **MULTI_LABEL_SCORE_FUNCTIONS}
    )
    try:
        return functions[name]
    except KeyError:
        raise InputError(
            f"unknown uncertainty score {name!r}; choose one of {sorted(functions)}"
        ) from None
