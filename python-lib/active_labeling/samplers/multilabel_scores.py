"""Informativeness scores of a multi-label model, from its independent binary probabilities.

A multi-label model gives ``proba`` of shape (n, k): ``proba[i, j]`` is the probability that
item i holds class j, each class on its own (rows need not sum to 1). Every function here
takes such a matrix and returns n floats in [0, 1], higher meaning more worth labeling, in
pure NumPy, so a pool can be scored chunk by chunk. Sources:

- mean and max binary uncertainty: uncertainty sampling (Settles 2009) applied to each
  class's binary decision, then averaged or maximized over the classes (as in Brinker 2006,
  "On active learning in multi-label classification", and the binary-relevance baselines of
  Yang et al. 2009);
- MMC: Yang, Sun, Wang and Chen 2009, "Effective multi-label active learning for text
  classification", KDD (maximum loss reduction with maximal confidence);
- label cardinality inconsistency: Li and Guo 2013, "Active learning with multi-label SVM
  classification", IJCAI.
"""

from __future__ import annotations

import numpy as np

from active_labeling.errors import InputError


def check_binary_proba(proba, what: str = "proba") -> np.ndarray:
    """Validate a matrix of independent binary probabilities; a 2-D float array.

    Raises
    ------
    InputError
        If ``proba`` is not 2-D, has no class column, or holds a value outside [0, 1] (or
        NaN); the message names the row.

    Examples
    --------
    >>> check_binary_proba([[0.9, 0.8], [0.1, 0.0]]).shape
    (2, 2)
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise InputError(f"{what} must be 2-D (samples x classes), got shape {proba.shape}")
    if proba.shape[1] == 0:
        raise InputError(f"{what} has no class column")
    bad = ~((proba >= 0.0) & (proba <= 1.0))  # also catches NaN
    if bad.any():
        i, j = (int(v[0]) for v in np.nonzero(bad))
        raise InputError(
            f"{what} row {i} holds {float(proba[i, j])!r} for class column {j}: pass one "
            "probability in [0, 1] per class, such as a multi-label model's predict_proba"
        )
    return proba


def binary_uncertainty(proba: np.ndarray) -> np.ndarray:
    """Each class's binary uncertainty ``1 - |2p - 1|``: 1 at p = 0.5, 0 at p = 0 or 1.

    It is the margin score of the two-class problem "holds the class or not" (the gap
    between p and 1 - p), so it ranks as least confidence and entropy do for two classes.

    Examples
    --------
    >>> binary_uncertainty(np.array([[0.5, 0.9, 0.0]])).round(3).tolist()
    [[1.0, 0.2, 0.0]]
    """
    return 1.0 - np.abs(2.0 * proba - 1.0)


def mean_binary_uncertainty(proba) -> np.ndarray:
    """Mean over the classes of the binary uncertainty ``1 - |2 p_j - 1|``.

    Examples
    --------
    >>> mean_binary_uncertainty([[0.5, 0.9], [1.0, 0.0], [0.6, 0.4]]).round(3).tolist()
    [0.6, 0.0, 0.8]
    """
    return _mean_binary_uncertainty(check_binary_proba(proba))


def _row_mean(values: np.ndarray) -> np.ndarray:
    """Each row's mean, summed column after column: a row's result never depends on the
    rows beside it (a matrix-vector product would: BLAS sums by the batch's shape)."""
    total = values[:, 0].copy()
    for j in range(1, values.shape[1]):
        total += values[:, j]
    return total / values.shape[1]


def _mean_binary_uncertainty(proba: np.ndarray) -> np.ndarray:
    return np.clip(_row_mean(binary_uncertainty(proba)), 0.0, 1.0)


def max_binary_uncertainty(proba) -> np.ndarray:
    """The largest binary uncertainty of a row's classes: the class it is least sure of.

    Examples
    --------
    >>> max_binary_uncertainty([[0.5, 0.9], [1.0, 0.0], [0.6, 0.4]]).round(3).tolist()
    [1.0, 0.0, 0.8]
    """
    return _max_binary_uncertainty(check_binary_proba(proba))


def _max_binary_uncertainty(proba: np.ndarray) -> np.ndarray:
    u = binary_uncertainty(proba)
    best = u[:, 0].copy()
    for j in range(1, u.shape[1]):
        np.maximum(best, u[:, j], out=best)
    return best


def binary_least_confidence(proba) -> np.ndarray:
    """Mean over the classes of ``min(p_j, 1 - p_j)``, each class's least-confidence
    uncertainty, in [0, 0.5]: the multi-label stopping signals (``overall_uncertainty``,
    ``max_uncertainty``) on the scale of a two-class model's least confidence.

    Examples
    --------
    >>> binary_least_confidence([[0.5, 0.9], [1.0, 0.0]]).round(3).tolist()
    [0.3, 0.0]
    """
    return _mean_binary_uncertainty(check_binary_proba(proba)) / 2.0


def sorted_probability_features(proba: np.ndarray) -> np.ndarray:
    """Each row's probabilities sorted from largest to smallest, divided by their sum: the
    features of MMC's label-count model (Yang et al. 2009, section 4.2). A row of zeros
    stays zeros.

    Examples
    --------
    >>> sorted_probability_features(np.array([[0.2, 0.6, 0.2], [0.0, 0.0, 0.0]])).tolist()
    [[0.6, 0.2, 0.2], [0.0, 0.0, 0.0]]
    """
    return _sorted_features(-np.sort(-proba, axis=1))


def _sorted_features(ordered: np.ndarray) -> np.ndarray:
    total = ordered.sum(axis=1, keepdims=True)
    return np.divide(ordered, total, out=np.zeros_like(ordered), where=total > 0)


def mmc_scores(proba, label_counts) -> np.ndarray:
    """MMC's expected loss reduction (Yang et al. 2009, eq. 8), divided by the classes.

    ``score(x) = 1/k sum_j (1 - yhat_j f_j(x)) / 2``, where ``yhat`` is the most confident
    label vector: +1 for the ``label_counts[i]`` classes of largest probability, -1 for the
    others, and ``f_j(x) = 2 p_j - 1`` maps the class's probability to [-1, 1] (the paper
    uses an SVM's output there). A row scores high when the classes it is predicted to hold
    are unlikely and those it is predicted not to hold are likely: a model that labels it
    will change most. Ties among equal probabilities take the earlier class.

    Parameters
    ----------
    proba : array-like of shape (n, k)
        Independent binary probabilities.
    label_counts : array-like of int of shape (n,)
        How many classes each row is predicted to hold (MMC's logistic regression).

    Examples
    --------
    >>> mmc_scores([[0.9, 0.6, 0.2]], [2]).round(4).tolist()   # ((0.1) + (0.4) + (0.2)) / 3
    [0.2333]
    >>> mmc_scores([[0.9, 0.6, 0.2]], [1]).round(4).tolist()   # ((0.1) + (0.6) + (0.2)) / 3
    [0.3]
    """
    proba = check_binary_proba(proba)
    counts = np.asarray(label_counts)
    if counts.shape != (proba.shape[0],):
        raise InputError(
            f"label_counts must hold one count per row of proba: {proba.shape[0]} rows, "
            f"got shape {counts.shape}"
        )
    return _mmc_scores(proba, counts)


def mmc_order(proba: np.ndarray) -> np.ndarray:
    """Each row's classes from the most to the least probable (ties: the earlier class)."""
    return np.argsort(-proba, axis=1, kind="stable")


def _mmc_scores(proba: np.ndarray, counts: np.ndarray, order: np.ndarray | None = None):
    k = proba.shape[1]
    order = mmc_order(proba) if order is None else order
    # +1 on the first ``count`` classes of the order, -1 on the others, put back in place.
    in_order = np.where(np.arange(k) < np.clip(counts, 0, k)[:, None], 1.0, -1.0)
    yhat = np.empty_like(in_order)
    np.put_along_axis(yhat, order, in_order, axis=1)
    loss = (1.0 - yhat * (2.0 * proba - 1.0)) / 2.0
    return np.clip(_row_mean(loss), 0.0, 1.0)


def cardinality_inconsistency(proba, thresholds, mean_cardinality: float) -> np.ndarray:
    """Label cardinality inconsistency (Li and Guo 2013, eq. 6), divided by the classes.

    ``|#{j : p_j >= t_j} - c_L| / k``: how far the number of classes the model predicts for
    a row is from ``c_L``, the mean number of classes per labeled item. A row predicted
    with far more or far fewer classes than items usually hold is likely mispredicted.

    Examples
    --------
    >>> cardinality_inconsistency([[0.9, 0.8, 0.7], [0.9, 0.1, 0.2]], [0.5] * 3, 1.5).tolist()
    [0.5, 0.16666666666666666]
    """
    proba = check_binary_proba(proba)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (proba.shape[1],):
        raise InputError(
            f"thresholds must hold one threshold per class: {proba.shape[1]} classes, got "
            f"shape {thresholds.shape}"
        )
    return _cardinality_inconsistency(proba, thresholds, float(mean_cardinality))


def _cardinality_inconsistency(
    proba: np.ndarray, thresholds: np.ndarray, mean_cardinality: float
) -> np.ndarray:
    k = proba.shape[1]
    predicted = (proba >= thresholds).sum(axis=1)
    return np.clip(np.abs(predicted - mean_cardinality) / k, 0.0, 1.0)


#: The uncertainty scores of a multi-label model by name, as WKMeans (``uncertainty``) and
#: the recipes refer to them.
MULTI_LABEL_SCORE_FUNCTIONS = {
    "mean_binary": mean_binary_uncertainty,
    "max_binary": max_binary_uncertainty,
}

#: The same, without the input check.
MULTI_LABEL_SCORE_CORES = {
    "mean_binary": _mean_binary_uncertainty,
    "max_binary": _max_binary_uncertainty,
}
