"""When labeling stops paying: the stopping signals and the rules on their histories.

The signals are measured once per model version (the monitoring recipe, the experiment
harness); each rule reads the history of one of them, oldest first, and answers a bool.
``metrics.advice`` wraps the rules into objects that explain their vote and combines them
into the advice. Nothing here stops anything.
"""

from __future__ import annotations

import math

import numpy as np

from active_labeling.errors import InputError
from active_labeling.metrics._checks import check_history, check_non_negative, check_positive_int
from active_labeling.samplers.scores import check_proba


def uncertainty_variance(uncertainties_per_batch, window: int = 1) -> float:
    """Variance of the uncertainty scores of the most recently selected batches.

    Ghayoomi 2010 ("Using variance as a stopping criterion for active learning of frame
    assignment"; tutorial "When should we stop labeling?") tracks, at each iteration, the
    variance of the uncertainty of the batch the strategy selects:
    ``V(t) = 1/|U| * sum_{u in U} (u - mean(U))**2`` over the scores ``U`` of the last
    ``window`` batches pooled (``window=1``, the default, is the paper's quantity). Record
    it once per model version and give the series to :func:`variance_stop`.

    Parameters
    ----------
    uncertainties_per_batch : sequence of array-like
        One entry per batch, oldest first: the uncertainty scores (least confidence,
        margin or entropy, as the query sampler computed them) of the rows selected in that
        batch. A scalar entry counts as a batch of one score, so a series of per-batch
        means gives the variance of those means over the window.
    window : int
        How many of the latest batches to pool.

    Returns
    -------
    float, >= 0

    Examples
    --------
    >>> round(uncertainty_variance([[0.2, 0.4], [0.1, 0.3]]), 6)
    0.01
    >>> round(uncertainty_variance([[0.2, 0.4], [0.1, 0.3]], window=2), 6)
    0.0125
    """
    window = check_positive_int(window, "window")
    if isinstance(uncertainties_per_batch, np.ndarray) and uncertainties_per_batch.ndim < 2:
        uncertainties_per_batch = list(uncertainties_per_batch)
    batches = list(uncertainties_per_batch)
    if not batches:
        raise InputError("uncertainties_per_batch is empty: there is no batch to measure")
    recent = []
    for position, batch in enumerate(batches[-window:], start=max(len(batches) - window, 0)):
        try:
            scores = np.asarray(batch, dtype=np.float64).ravel()
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"uncertainties_per_batch entry {position} must hold numbers: {exc}"
            ) from None
        if not np.isfinite(scores).all():
            raise InputError(f"uncertainties_per_batch entry {position} has a non-finite score")
        recent.append(scores)
    pooled = np.concatenate(recent)
    if pooled.size == 0:
        raise InputError(f"the last {window} batch(es) of uncertainties_per_batch are empty")
    return float(pooled.var())


def _fell_each_time(values: np.ndarray, steps: int, min_drop: float) -> bool:
    """Whether each of the last ``steps`` changes was a drop larger than ``min_drop``."""
    if values.shape[0] < steps + 1:
        return False
    changes = np.diff(values[-(steps + 1) :])
    return bool((changes < -min_drop).all())


def variance_stop(history, window: int = 2, threshold: float = 0.0) -> bool:
    """Ghayoomi 2010's stopping rule: the uncertainty variance keeps falling.

    The variance of the selected batch's uncertainty rises while the model is still
    finding new kinds of uncertain rows, then falls once what is left looks alike. The
    rule stops when it fell at each of the last ``window`` model versions, each time by
    more than ``threshold``: ``V(t-i) < V(t-i-1) - threshold`` for ``i = 0 .. window-1``.
    ``threshold=0`` is the paper's Variance Model, a positive one its Extended Variance
    Model. The rule looks at the trend, not the level, because the level depends on the
    uncertainty measure and the data.

    Parameters
    ----------
    history : array-like of shape (n_versions,)
        :func:`uncertainty_variance` of each model version, oldest first (NaN entries are
        skipped).
    window : int
        Consecutive drops needed (the paper's n; default 2).
    threshold : float
        Smallest drop that counts (the paper's m; default 0).

    Returns
    -------
    bool
        False while the history is shorter than ``window + 1``.

    Examples
    --------
    >>> variance_stop([0.02, 0.05, 0.04, 0.03])
    True
    >>> variance_stop([0.02, 0.05, 0.04, 0.045])
    False
    >>> variance_stop([0.02, 0.05, 0.04, 0.03], threshold=0.015)  # drops of 0.01 only
    False
    """
    values = check_history(history, "history")
    window = check_positive_int(window, "window")
    threshold = check_non_negative(threshold, "threshold")
    return _fell_each_time(values, window, threshold)


def mean_confidence(proba) -> float:
    """Mean confidence of a model on a fixed unlabeled sample, for :func:`confidence_stop`.

    ``conf(t) = 1/|S| * sum_{x in S} max_k P_t(k | x)``, the mean probability of the
    predicted class over the stopping set ``S`` (Vlachos 2008 uses the same average for
    maximum-entropy models; for SVMs, the mean distance to the margin).

    Parameters
    ----------
    proba : array-like of shape (n, k)
        ``predict_proba`` of the model version on the stopping set.

    Returns
    -------
    float in [1/k, 1]

    Examples
    --------
    >>> mean_confidence([[0.9, 0.1], [0.6, 0.4]])
    0.75
    """
    proba = check_proba(proba, "proba")
    if proba.shape[0] == 0:
        raise InputError("proba is empty: there is no row to measure")
    return float(proba.max(axis=1).mean())


def confidence_stop(confidence_history, rounds: int = 3, tolerance: float = 0.0) -> bool:
    """Vlachos 2008's stopping rule: confidence on a held-out unlabeled set has peaked.

    "A stopping criterion for active learning" (Computer Speech & Language 22(3)): the
    model's confidence on a fixed unlabeled stopping set rises while labels teach it, peaks,
    then drops once the strategy is left with rows that only confuse it. The rule stops
    when the confidence dropped at each of the last ``rounds`` model versions, each time by
    more than ``tolerance``.

    Parameters
    ----------
    confidence_history : array-like of shape (n_versions,)
        :func:`mean_confidence` of each model version on the same fixed unlabeled sample
        (the contradiction sample serves), oldest first; NaN entries are skipped.
    rounds : int
        Consecutive drops needed (default 3).
    tolerance : float
        Smallest drop that counts (default 0).

    Returns
    -------
    bool
        False while the history is shorter than ``rounds + 1``.

    Examples
    --------
    >>> confidence_stop([0.70, 0.82, 0.90, 0.89, 0.88, 0.86])
    True
    >>> confidence_stop([0.70, 0.82, 0.90, 0.89, 0.91, 0.86])
    False
    """
    values = check_history(confidence_history, "confidence_history")
    rounds = check_positive_int(rounds, "rounds")
    tolerance = check_non_negative(tolerance, "tolerance")
    return _fell_each_time(values, rounds, tolerance)


def stop_set_kappa(previous_pred, current_pred) -> float:
    """Agreement of two successive model versions on the stop set: Cohen's kappa.

    Bloodgood and Vijay-Shanker 2009 ("A method for stopping active learning based on
    stabilizing predictions and the need for user-adjustable stopping", CoNLL) measure how
    much the predictions of successive models agree on a fixed unlabeled "stop set", with
    Cohen's kappa, and stop once the agreement has stayed very high (see
    :func:`stabilizing_predictions_stop`). Two versions that predict exactly the same
    classes agree perfectly: 1.0, also where kappa itself is undefined (one class only).

    Parameters
    ----------
    previous_pred, current_pred : array-like of shape (n,)
        Classes predicted on the same rows by the previous and the current version.

    Returns
    -------
    float in [-1, 1]

    Examples
    --------
    >>> stop_set_kappa(["x", "x", "y", "y"], ["x", "y", "y", "y"])
    0.5
    >>> stop_set_kappa(["x", "x"], ["x", "x"])
    1.0
    """
    from active_labeling.metrics.kappa import cohen_kappa

    kappa = cohen_kappa(previous_pred, current_pred)
    if math.isnan(kappa):  # both constant: the same class throughout
        return 1.0
    return float(kappa)


def sample_uncertainty(proba) -> tuple[float, float]:
    """Mean and largest least-confidence uncertainty ``1 - max_k P(k | x)`` over rows.

    Zhu, Wang, Yao and Tsou 2008 ("Multi-criteria-based strategy to stop active learning for
    data annotation", COLING) stop when the model has become sure of the unlabeled data:
    *overall uncertainty*, the mean uncertainty over the unlabeled pool, falls under a
    threshold, or *max-confidence*, the uncertainty of the most uncertain unlabeled row
    (the one uncertainty sampling would pick next), does. They measure entropy; least
    confidence is used here, as for the batch uncertainty, so that one scale serves every
    number of classes. Give the rows of the fixed sample that are still unlabeled.

    Returns
    -------
    (float, float)
        The mean and the maximum, both in [0, 1 - 1/k].

    Examples
    --------
    >>> sample_uncertainty([[0.9, 0.1], [0.6, 0.4]])
    (0.25, 0.4)
    """
    proba = check_proba(proba, "proba")
    if proba.shape[0] == 0:
        raise InputError("proba is empty: there is no row to measure")
    uncertainty = 1.0 - proba.max(axis=1)
    return float(uncertainty.mean()), float(uncertainty.max())


def stabilizing_predictions_stop(kappa_history, window: int = 3, threshold: float = 0.99) -> bool:
    """Bloodgood and Vijay-Shanker 2009: stop once successive models agree, and keep agreeing.

    Stops when the mean of the last ``window`` values of :func:`stop_set_kappa` is at least
    ``threshold`` (the paper: the last 3 agreements, 0.99).

    Examples
    --------
    >>> stabilizing_predictions_stop([0.8, 0.97, 0.995, 0.99, 1.0])
    True
    >>> stabilizing_predictions_stop([0.8, 0.97, 0.995, 0.99])
    False
    """
    values = check_history(kappa_history, "kappa_history")
    window = check_positive_int(window, "window")
    if values.shape[0] < window:
        return False
    # A mean at the threshold stops, whatever the last bit of the sum says.
    return bool(values[-window:].mean() >= threshold - 1e-12)


def classification_change_stop(contradiction_history, rounds: int = 1) -> bool:
    """Zhu et al. 2008: stop when no prediction on the unlabeled sample changed.

    Stops when the last ``rounds`` values of the contradiction ratio are exactly 0: the
    newest batches of labels did not change a single predicted class of the sample.

    Examples
    --------
    >>> classification_change_stop([0.2, 0.01, 0.0])
    True
    >>> classification_change_stop([0.2, 0.01, 0.0], rounds=2)
    False
    """
    values = check_history(contradiction_history, "contradiction_history")
    rounds = check_positive_int(rounds, "rounds")
    if values.shape[0] < rounds:
        return False
    return bool((values[-rounds:] <= 0.0).all())


def uncertainty_stop(history, threshold: float, rounds: int = 1) -> bool:
    """Zhu et al. 2008's overall-uncertainty and max-confidence rules on a history.

    Stops when the last ``rounds`` values (the mean, for overall uncertainty, or the
    maximum, for max-confidence, of :func:`sample_uncertainty`) are at most ``threshold``.

    Examples
    --------
    >>> uncertainty_stop([0.3, 0.12, 0.04], threshold=0.05)
    True
    """
    values = check_history(history, "history")
    threshold = check_non_negative(threshold, "threshold")
    rounds = check_positive_int(rounds, "rounds")
    if values.shape[0] < rounds:
        return False
    return bool((values[-rounds:] <= threshold).all())
