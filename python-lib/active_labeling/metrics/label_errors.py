"""Labels that are likely wrong, found by confident learning on out-of-fold probabilities.

Northcutt, Jiang and Chuang 2021 ("Confident learning: estimating uncertainty in dataset
labels", JAIR 70): with ``p(j | x)`` predicted by a model that did not see ``x``'s label
(out of fold), each class gets a threshold, the mean predicted probability of class ``j``
over the rows labeled ``j``. A row is *confidently* of class ``j`` when ``p(j | x)`` reaches
that threshold (the largest such ``j`` if several do); a row labeled ``l`` and confidently of
another class ``j`` sits off the diagonal of the confident joint: a likely label error. The
suspects are ranked by their self-confidence ``p(l | x)``, lowest first, so a reviewer sees
the most doubtful first. Active learning makes this matter: uncertainty strategies seek out
the ambiguous rows labelers get wrong.

This is the paper's ``confident_learning`` filter (cleanlab's ``filter_by =
"confident_learning"``); ``bench/`` compares it with cleanlab on the same probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from active_labeling.errors import InputError
from active_labeling.samplers.scores import check_proba


def out_of_fold_proba(model, X, y, *, cv: int = 5, random_state: int = 0) -> np.ndarray:
    """``predict_proba`` of clones of ``model``, each row by a model that did not see it.

    Stratified folds (at most ``cv``, at least 2; fewer when a class has fewer rows),
    shuffled with ``random_state``. Columns follow ``np.unique(y)``.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray(y)
    _, counts = np.unique(y, return_counts=True)
    if counts.shape[0] < 2:
        raise InputError("out-of-fold probabilities need labels of at least two classes")
    folds = int(min(cv, counts.min()))
    if folds < 2:
        raise InputError(
            f"a class has a single labeled row: out-of-fold probabilities need at least two "
            f"per class (counts: {counts.tolist()})"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    return cross_val_predict(model, X, y, cv=splitter, method="predict_proba")


def label_issues(labels, proba, classes=None) -> pd.DataFrame:
    """Confident learning's suspects among ``labels``, given out-of-fold ``proba``.

    Parameters
    ----------
    labels : array-like of shape (n,)
        The labels given.
    proba : array-like of shape (n, k)
        Out-of-fold probabilities, columns in the order of ``classes``.
    classes : sequence, optional
        The classes of ``proba``'s columns (default: the sorted labels).

    Returns
    -------
    DataFrame
        One row per label, in the order given: ``label``, ``self_confidence``,
        ``suggested`` (the confident class, or the most probable one), ``issue`` (bool),
        ``rank`` (1 for the most doubtful suspect; NaN for the others).

    Examples
    --------
    The third row is labeled "a" but the model is sure it is "b":

    >>> proba = [[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7]]
    >>> found = label_issues(["a", "a", "a", "b", "b"], proba)
    >>> found["issue"].tolist(), found.loc[2, "suggested"]
    ([False, False, True, False, False], 'b')
    """
    labels = np.asarray(labels, dtype=object)
    proba = check_proba(proba, "proba")
    if proba.shape[0] != labels.shape[0]:
        raise InputError(f"proba has {proba.shape[0]} rows but labels {labels.shape[0]}")
    classes = list(sorted(set(labels), key=str) if classes is None else classes)
    if len(classes) != proba.shape[1]:
        raise InputError(f"proba has {proba.shape[1]} columns for {len(classes)} classes")
    index = pd.Index(classes)
    given = index.get_indexer(labels)
    if (given < 0).any():
        bad = labels[np.flatnonzero(given < 0)[0]]
        raise InputError(f"label {bad!r} is not one of the classes {classes}")
    n, k = proba.shape
    # Per-class threshold: the mean probability of the class over the rows labeled with it
    # (a class nobody chose is never confidently assigned).
    thresholds = np.full(k, np.inf)
    for j in range(k):
        rows = given == j
        if rows.any():
            thresholds[j] = proba[rows, j].mean()
    confident = proba >= thresholds - 1e-12
    masked = np.where(confident, proba, -1.0)
    confident_class = masked.argmax(axis=1)
    has_confident = confident.any(axis=1)
    issue = has_confident & (confident_class != given)
    suggested = np.where(has_confident, confident_class, proba.argmax(axis=1))
    self_confidence = proba[np.arange(n), given]
    rank = np.full(n, np.nan)
    suspects = np.flatnonzero(issue)
    order = suspects[np.lexsort((suspects, self_confidence[suspects]))]
    rank[order] = np.arange(1, order.shape[0] + 1)
    return pd.DataFrame(
        {
            "label": labels,
            "self_confidence": self_confidence,
            "suggested": np.asarray(classes, dtype=object)[suggested],
            "issue": issue,
            "rank": rank,
        }
    )
