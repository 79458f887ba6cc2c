"""Multi-label models: one binary model per class, thresholds per class, multi-label scores.

An item of a multi-label project holds a set of classes. The model is the project's
pipeline (the preprocessor of :mod:`active_labeling.models.features`, then a classifier)
whose classifier is wrapped in scikit-learn's ``OneVsRestClassifier`` (one independent
binary model per class, the default) or ``ClassifierChain`` (each class's model also reads
the classes before it in the chain). ``predict_proba`` gives an (n, k) matrix of independent
binary probabilities, one column per class; a class is predicted where its probability
reaches the class's threshold, chosen by cross-validation to maximize that class's F1
(0.5 for a 0/1 model). Nothing here touches the disk.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import f1_score, hamming_loss
from sklearn.model_selection import KFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain
from sklearn.pipeline import Pipeline

from active_labeling.errors import InputError
from active_labeling.models.features import build_preprocessor, infer_column_kinds
from active_labeling.models.training import (
    CVScores,
    FoldScores,
    ModelMeta,
    Progress,
    TrainedModel,
    _check_cv,
    _classifier_factory,
    _fold_scores,
    _json_params,
    _library_versions,
)

MultiLabelMethod = Literal["one_vs_rest", "classifier_chain"]
MULTI_LABEL_METHODS = ("one_vs_rest", "classifier_chain")

#: The threshold of a class whose out-of-fold probabilities say nothing (no positive item,
#: no cross-validation): the usual one for a probability.
DEFAULT_THRESHOLD = 0.5


def indicator_matrix(Y, n_rows: int, classes: Sequence[str]) -> np.ndarray:
    """``Y`` as an (n, k) matrix of 0/1 integers, checked against the rows and classes.

    Examples
    --------
    >>> indicator_matrix([[1, 0], [True, True]], 2, ["a", "b"]).tolist()
    [[1, 0], [1, 1]]
    """
    try:
        Y = np.asarray(Y)
    except ValueError:  # ragged lists
        raise InputError("labels: give one row of 0/1 per item, one column per class") from None
    if Y.ndim != 2 or Y.shape != (n_rows, len(classes)):
        raise InputError(
            f"labels: an indicator matrix of {n_rows} rows x {len(classes)} classes is "
            f"expected, got shape {Y.shape}"
        )
    if Y.dtype == bool:
        return Y.astype(np.int64)
    if not np.isin(Y, (0, 1)).all():
        row = int(np.flatnonzero(~np.isin(Y, (0, 1)).all(axis=1))[0])
        raise InputError(f"labels: row {row} holds a value other than 0 and 1")
    return Y.astype(np.int64)


def best_thresholds(proba: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Per class, the threshold that maximizes the class's F1 on ``(proba, Y)``.

    The candidates are halfway between consecutive distinct probabilities of the class (a
    threshold inside a gap predicts the same items whatever its place there), and halfway
    below the smallest; a class is predicted where ``proba >= threshold``. Among equal F1s
    the threshold closest to 0.5 wins. A class without a positive item keeps 0.5 (its F1 is
    0 whatever the threshold).

    Examples
    --------
    >>> proba = np.array([[0.9, 0.2], [0.6, 0.4], [0.3, 0.35], [0.1, 0.1]])
    >>> Y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    >>> best_thresholds(proba, Y).tolist()
    [0.45, 0.275]
    """
    proba = np.asarray(proba, dtype=np.float64)
    thresholds = np.full(proba.shape[1], DEFAULT_THRESHOLD)
    for j in range(proba.shape[1]):
        thresholds[j] = _best_threshold(proba[:, j], Y[:, j])
    return thresholds


def _best_threshold(p: np.ndarray, y: np.ndarray) -> float:
    positives = int(y.sum())
    if positives == 0:
        return DEFAULT_THRESHOLD
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    # Predicting the top i items positive: only where the probability changes after item i
    # (or after the last item) is that a threshold's prediction.
    i = np.flatnonzero(np.append(p_sorted[:-1] > p_sorted[1:], True)) + 1
    true_positives = np.cumsum(y_sorted)[i - 1]
    f1 = 2.0 * true_positives / (i + positives)
    below = np.append(p_sorted[1:], 0.0)[i - 1]  # the next probability down (0 past the end)
    candidates = (p_sorted[i - 1] + below) / 2.0
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def predict_label_sets(proba: np.ndarray, thresholds) -> np.ndarray:
    """The predicted indicator matrix: class j where ``proba[:, j] >= thresholds[j]``.

    Examples
    --------
    >>> predict_label_sets(np.array([[0.9, 0.3], [0.2, 0.5]]), [0.5, 0.4]).tolist()
    [[1, 0], [0, 1]]
    """
    return (np.asarray(proba) >= np.asarray(thresholds, dtype=np.float64)).astype(np.int64)


def multilabel_scores(Y_true: np.ndarray, Y_pred: np.ndarray) -> dict[str, float]:
    """Micro- and macro-averaged F1, Hamming loss and subset accuracy of predicted sets.

    Micro-F1 pools every (item, class) decision; macro-F1 averages the F1 of each class
    (a class never true nor predicted counts 0, as scikit-learn's ``zero_division=0``);
    Hamming loss is the share of wrong (item, class) decisions; subset accuracy the share
    of items whose whole set is right.

    Examples
    --------
    >>> scores = multilabel_scores(np.array([[1, 0], [1, 1]]), np.array([[1, 0], [0, 1]]))
    >>> {k: round(v, 3) for k, v in scores.items()}
    {'f1_micro': 0.8, 'f1_macro': 0.833, 'hamming_loss': 0.25, 'subset_accuracy': 0.5}
    """
    Y_true, Y_pred = np.asarray(Y_true), np.asarray(Y_pred)
    return {
        "f1_micro": float(f1_score(Y_true, Y_pred, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(Y_true, Y_pred, average="macro", zero_division=0)),
        "hamming_loss": float(hamming_loss(Y_true, Y_pred)),
        "subset_accuracy": float((Y_true == Y_pred).all(axis=1).mean()),
    }


def multilabel_estimator(
    estimator, method: MultiLabelMethod = "one_vs_rest", random_state: int = 0
):
    """The binary ``estimator`` made multi-label by ``method``.

    ``one_vs_rest`` fits one clone per class; a class that every training item holds (or
    none does) gets a constant probability. ``classifier_chain`` feeds each class's model
    the classes before it, in the classes' order.
    """
    if method == "one_vs_rest":
        return OneVsRestClassifier(estimator)
    if method == "classifier_chain":
        return ClassifierChain(estimator, random_state=random_state)
    raise InputError(
        f"multi_label_method {method!r} is unknown; choose one of {', '.join(MULTI_LABEL_METHODS)}"
    )


def fit_quietly(model, X, Y):
    """``model.fit(X, Y)`` without one-vs-rest's warning for a class every training item
    holds or none does: early in a project that is expected, and the class's probability is
    then the constant it should be."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
        return model.fit(X, Y)


def train_multilabel_classifier(
    frame: pd.DataFrame,
    Y,
    *,
    classes: Sequence[str],
    feature_columns: Sequence[str],
    classifier: str = "logistic_regression",
    method: MultiLabelMethod = "one_vs_rest",
    text_columns: Sequence[str] = (),
    categorical_columns: Sequence[str] = (),
    cv: int | None = 5,
    random_state: int = 0,
    progress: Progress | None = None,
) -> TrainedModel:
    """Fit a multi-label pipeline on labeled rows: probabilities and thresholds per class.

    The folds are shuffled k-folds (``min(cv, rows)`` of them, ``random_state``); the
    out-of-fold probabilities choose each class's threshold (:func:`best_thresholds`). Each
    fold is scored with thresholds chosen on the other folds' probabilities, so the scores
    do not see the items they judge twice. The returned pipeline is fitted on all the rows.

    Parameters
    ----------
    frame : DataFrame
        The labeled rows; columns other than ``feature_columns`` are ignored.
    Y : array-like of shape (n, k)
        0/1 per row and class, the columns in the order of ``classes``.
    classes : sequence of str
        The project's classes.
    feature_columns, classifier, text_columns, categorical_columns, cv, random_state, progress
        As for :func:`~active_labeling.models.training.train_classifier`.
    method : {"one_vs_rest", "classifier_chain"}
        How the classes are modelled (see :func:`multilabel_estimator`).

    Raises
    ------
    InputError
        No row, a label matrix of the wrong shape, a classifier chain with a class that
        every item holds or none does (each link needs both), an unknown classifier or
        method, a bad ``cv``, or a feature column that cannot be used.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [0.0, 1, 2, 3, 4, 5, 6, 7], "y": [0.0, 1, 0, 1, 0, 1, 0, 1]})
    >>> Y = [[x > 3, y > 0] for x, y in zip(frame.x, frame.y)]
    >>> trained = train_multilabel_classifier(frame, Y, classes=["big", "odd"],
    ...                                       feature_columns=["x", "y"], cv=2)
    >>> trained.meta.multi_label, list(trained.meta.thresholds), trained.meta.class_counts
    (True, ['big', 'odd'], {'big': 4, 'odd': 4})
    >>> trained.pipeline.predict_proba(frame).shape
    (8, 2)
    """
    factory = _classifier_factory(classifier)
    _check_cv(cv)
    classes = [str(c) for c in classes]
    if method not in MULTI_LABEL_METHODS:
        multilabel_estimator(None, method)  # raises, naming the choices
    if len(frame) == 0:
        raise InputError("the training data has no row: label some items first")
    Y = indicator_matrix(Y, len(frame), classes)
    counts = Y.sum(axis=0)
    if method == "classifier_chain":
        _check_chain_classes(counts, len(frame), classes)
    kinds = infer_column_kinds(
        frame, feature_columns, text_columns=text_columns, categorical_columns=categorical_columns
    )
    X = frame[list(kinds)]
    pipeline = Pipeline(
        [
            (
                "preprocess",
                build_preprocessor(
                    kinds, dense=factory.dense_input, max_text_features=factory.max_text_features
                ),
            ),
            ("classifier", multilabel_estimator(factory(random_state), method, random_state)),
        ]
    )
    folds, cv_note = _folds(cv, Y, method, classes, random_state)
    total = len(folds) + 1
    cv_scores, thresholds = None, np.full(len(classes), DEFAULT_THRESHOLD)
    if folds:
        oof = np.empty(Y.shape)
        for done, (train, test) in enumerate(folds, start=1):
            model = fit_quietly(clone(pipeline), X.iloc[train], Y[train])
            oof[test] = model.predict_proba(X.iloc[test])
            if progress is not None:
                progress(done, total, f"cross-validation fold {done}/{len(folds)}")
        thresholds = best_thresholds(oof, Y)
        cv_scores = _fold_scores_of(oof, Y, folds)
    fit_quietly(pipeline, X, Y)
    if progress is not None:
        progress(total, total, "fit")
    meta = ModelMeta(
        trained_at=datetime.now(timezone.utc),
        classes=classes,
        multi_label=True,
        multi_label_method=method,
        thresholds={c: float(t) for c, t in zip(classes, thresholds, strict=True)},
        class_counts={c: int(n) for c, n in zip(classes, counts, strict=True)},
        feature_columns=list(kinds),
        feature_kinds=kinds,
        feature_dtypes={column: str(X[column].dtype) for column in kinds},
        classifier=classifier,
        params=_json_params(pipeline.named_steps["classifier"].estimator),
        training_rows=len(X),
        cv_scores=cv_scores,
        cv_note=cv_note,
        library_versions=_library_versions(),
    )
    return TrainedModel(pipeline=pipeline, meta=meta)


def _check_chain_classes(counts: np.ndarray, n: int, classes: list[str]) -> None:
    for c, count in zip(classes, counts, strict=True):
        if count in (0, n):
            which = "none" if count == 0 else "every one"
            raise InputError(
                f"multi_label_method 'classifier_chain': class {c!r} is held by {which} of "
                f"the {n} labeled items, and each link of a chain needs items with and "
                "without its class: label more, or use 'one_vs_rest'"
            )


def _folds(cv, Y: np.ndarray, method: str, classes: list[str], random_state: int):
    """The cross-validation folds (train, test) and a note when there are fewer or none."""
    n = Y.shape[0]
    if cv is None:
        return [], "cross-validation turned off (cv=None)"
    if n < 2:
        return [], "no cross-validation: a single labeled item"
    n_splits = min(cv, n)
    folds = list(KFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(Y))
    if method == "classifier_chain":
        for train, _ in folds:
            constant = (Y[train].min(axis=0) == Y[train].max(axis=0)).nonzero()[0]
            if constant.size:
                return [], (
                    f"no cross-validation: a fold's training items all hold class "
                    f"{classes[constant[0]]!r} or all lack it, which a chain cannot fit; "
                    "thresholds are 0.5"
                )
    note = f"{n_splits} folds instead of {cv}: only {n} labeled items" if n_splits < cv else None
    return folds, note


def _fold_scores_of(oof: np.ndarray, Y: np.ndarray, folds) -> CVScores:
    per_fold: dict[str, list[float]] = {}
    for train, test in folds:
        # Thresholds from the other folds' out-of-fold probabilities: fold ``test`` is
        # judged by a rule that did not look at it.
        thresholds = best_thresholds(oof[train], Y[train])
        scores = multilabel_scores(Y[test], predict_label_sets(oof[test], thresholds))
        for name, value in scores.items():
            per_fold.setdefault(name, []).append(value)
    fold_scores: dict[str, FoldScores] = {k: _fold_scores(v) for k, v in per_fold.items()}
    return CVScores(**fold_scores)
