"""How hard the newly labeled batch is: easiness (with its labels) and agreement (without).

Both come from Abraham 2020 (tutorial, "Hard to classify samples"): a strategy that keeps
picking rows the model already gets right, or on which a 1-nearest-neighbour classifier
agrees with the model, is choosing easy rows that teach little.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from active_labeling.metrics._checks import (
    check_comparable_labels,
    check_features,
    check_labels,
    check_same_length,
    check_same_width,
)
from active_labeling.metrics.kappa import cohen_kappa


def batch_agreement(
    model_pred_new, X_new, X_labeled, y_labeled, *, chance_corrected: bool = True
) -> float:
    """Cohen's kappa between the model and a 1-nearest-neighbour classifier on the batch.

    ``h_NN`` is a 1-NN classifier fitted on the rows labeled before the batch
    (``X_labeled``, ``y_labeled``); the value is ``kappa(h(B), h_NN(B))`` over the batch
    ``B`` (Cohen's kappa, see :func:`cohen_kappa`). The tutorial ("With independent
    unlabeled set: Agreement") writes the raw share of agreeing rows,
    ``1/|B| * sum_{x in B} 1[h(x) = h_NN(x)]``, and calls it kappa; ``chance_corrected=False``
    returns that share. Kappa is the default because the raw share is high whenever one
    class dominates.

    High agreement: the batch lies where even a nearest-neighbour rule agrees with the
    model, so it is easy (the tutorial: above chance, move to a strategy that picks harder
    rows). Both classifiers are weak in the first rounds, so read it once a few batches are
    in. NaN when both classifiers give one and the same class on the whole batch.

    Parameters
    ----------
    model_pred_new : array-like of shape (n_new,)
        Classes the model that chose the batch predicts for its rows (a model trained on
        the batch's own labels would make this a measure of those labels instead).
    X_new : array-like of shape (n_new, d)
        Numeric features of the batch (the model's feature space, or any embedding).
    X_labeled : array-like of shape (n_labeled, d)
        Features of the rows labeled before the batch.
    y_labeled : array-like of shape (n_labeled,)
        Their labels.
    chance_corrected : bool
        Cohen's kappa (default) or the tutorial's raw agreement share.

    Returns
    -------
    float

    Examples
    --------
    The 1-NN rule says a, a, b, b; the model says a, b, b, b:

    >>> X_lab, y_lab = [[0.0], [10.0]], ["a", "b"]
    >>> X_new = [[1.0], [2.0], [8.0], [9.0]]
    >>> batch_agreement(["a", "b", "b", "b"], X_new, X_lab, y_lab)
    0.5
    >>> batch_agreement(["a", "b", "b", "b"], X_new, X_lab, y_lab, chance_corrected=False)
    0.75
    """
    model_pred = check_labels(model_pred_new, "model_pred_new")
    X_new = check_features(X_new, "X_new")
    X_labeled = check_features(X_labeled, "X_labeled")
    y_labeled = check_labels(y_labeled, "y_labeled")
    check_same_length(model_pred, X_new, "model_pred_new", "X_new")
    check_same_length(X_labeled, y_labeled, "X_labeled", "y_labeled")
    check_same_width(X_new, X_labeled, "X_new", "X_labeled")
    check_comparable_labels(model_pred, y_labeled, "model_pred_new", "y_labeled")
    nn_pred = KNeighborsClassifier(n_neighbors=1).fit(X_labeled, y_labeled).predict(X_new)
    if not chance_corrected:
        return float(np.mean(model_pred == nn_pred))
    return cohen_kappa(model_pred, nn_pred)


def batch_easiness(previous_pred_new, y_new) -> float:
    """Accuracy of the previous model version on the newly labeled batch.

    ``E(B_t) = 1/|B_t| * sum_{(x, y) in B_t} 1[h_{t-1}(x) = y]``: the model trained before
    the batch, scored on the labels the batch received (Abraham 2020, tutorial "With
    independent labeled set: Easiness", where the reference classifier is ours). High
    easiness: the strategy picks rows the model already knew; low: it finds its mistakes.

    Parameters
    ----------
    previous_pred_new : array-like of shape (n_new,)
        Classes the previous model version predicted for the batch rows.
    y_new : array-like of shape (n_new,)
        The labels the batch received.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> batch_easiness(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    0.75
    """
    previous = check_labels(previous_pred_new, "previous_pred_new")
    y_new = check_labels(y_new, "y_new")
    check_same_length(previous, y_new, "previous_pred_new", "y_new")
    check_comparable_labels(previous, y_new, "previous_pred_new", "y_new")
    return float(np.mean(previous == y_new))
