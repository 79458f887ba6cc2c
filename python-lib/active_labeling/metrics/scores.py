"""Model quality: on a holdout labeled set when there is one, else cross-validated.

Cross-validation on the labeled set is optimistic and biased (the set is small and chosen
by the query strategy, tutorial "How to get insight on an active learning experiment?"),
so its result says so: ``optimistic=True``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

from active_labeling.errors import InputError
from active_labeling.metrics._checks import (
    check_comparable_labels,
    check_labels,
    check_positive_int,
    check_same_length,
)
from active_labeling.samplers._validation import as_generator, seed_from


def holdout_scores(y_true, y_pred) -> dict:
    """Accuracy and macro F1 on a holdout labeled set.

    ``accuracy = 1/n * sum_i 1[y_i = h(x_i)]`` (tutorial, "With independent labeled set:
    Accuracy"); ``macro_f1`` is the unweighted mean over classes of
    ``F1_k = 2 * P_k * R_k / (P_k + R_k)``, over every class seen in ``y_true`` or
    ``y_pred`` (a class never predicted counts 0), so rare classes weigh as much as common
    ones.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Holdout labels.
    y_pred : array-like of shape (n,)
        The model's predictions on the same rows.

    Returns
    -------
    dict
        ``{"accuracy": float, "macro_f1": float, "optimistic": False}``.

    Examples
    --------
    Class a: P = 1, R = 1/2, F1 = 2/3; class b: P = 2/3, R = 1, F1 = 4/5:

    >>> scores = holdout_scores(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    >>> scores["accuracy"], round(scores["macro_f1"], 4)
    (0.75, 0.7333)
    """
    y_true = check_labels(y_true, "y_true")
    y_pred = check_labels(y_pred, "y_pred")
    check_same_length(y_true, y_pred, "y_true", "y_pred")
    check_comparable_labels(y_true, y_pred, "y_true", "y_pred")
    return _scores(y_true, y_pred) | {"optimistic": False}


def _scores(y_true, y_pred) -> dict:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def cross_validated_scores(model, X, y, cv: int = 5, random_state=None) -> dict:
    """Cross-validated accuracy and macro F1 on the labeled set, marked optimistic.

    Each row is predicted by a clone of ``model`` fitted on the other folds
    (``cross_val_predict``), then accuracy and macro F1 are computed over all rows at once,
    as in :func:`holdout_scores`. Folds are shuffled with ``random_state`` and stratified
    by class.

    Tiny classes: stratified folds need every class in every fold, so the number of folds
    drops to the size of the smallest class (never below 2). A class with a single label
    cannot be stratified at all: then the folds are plain shuffled folds, that class is
    predicted only by models that never saw it (usually wrong), and ``note`` says so.

    Parameters
    ----------
    model : scikit-learn classifier (or pipeline)
        Not fitted in place: clones are.
    X : array-like or DataFrame of shape (n, ...)
        What ``model.fit`` takes.
    y : array-like of shape (n,)
        Labels; at least two classes and two rows.
    cv : int
        Folds wanted (default 5).
    random_state : None, int or numpy Generator
        Shuffles the folds; the same seed gives the same folds.

    Returns
    -------
    dict
        ``{"accuracy", "macro_f1", "optimistic": True, "n_splits", "note"}``; ``note`` is
        an empty string when the folds are as asked.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> X = [[0], [1], [2], [10], [11], [12]]
    >>> y = ["a", "a", "a", "b", "b", "b"]
    >>> s = cross_validated_scores(KNeighborsClassifier(1), X, y, cv=3, random_state=0)
    >>> s["accuracy"], s["optimistic"], s["n_splits"]
    (1.0, True, 3)
    """
    y = check_labels(y, "y")
    if check_positive_int(cv, "cv") < 2:
        raise InputError(f"cv must be at least 2 (the number of folds), got {cv!r}")
    check_same_length(X, y, "X", "y")
    classes, counts = np.unique(y, return_counts=True)
    if classes.shape[0] < 2:
        raise InputError(
            f"y has a single class ({classes[0].item()!r}); cross-validation needs two classes"
        )
    seed = seed_from(as_generator(random_state))
    smallest = int(counts.min())
    if smallest >= 2:
        n_splits = min(cv, smallest)
        folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        note = (
            ""
            if n_splits == cv
            else f"{n_splits} folds instead of {cv}: the smallest class "
            f"({classes[counts.argmin()].item()!r}) has {smallest} labels"
        )
    else:
        n_splits = min(cv, y.shape[0])
        folds = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
        singles = ", ".join(repr(c) for c in classes[counts == 1][:5].tolist())
        note = (
            f"folds not stratified: class(es) {singles} have a single label, which is "
            "never seen in training when it is tested"
        )
    y_pred = cross_val_predict(clone(model), X, y, cv=folds)
    return _scores(y, y_pred) | {"optimistic": True, "n_splits": n_splits, "note": note}
