"""Monitoring metrics for multi-label models, whose predictions and labels are sets.

A label set is a row of an indicator matrix (one column per class, 1 where the item holds
the class); a multi-label model's probabilities are an (n, k) matrix of independent binary
probabilities. The single-label metrics compare classes for equality; here:

- a **contradiction** is a row whose predicted set changed (any class added or dropped);
- **agreement** between two sets is their Jaccard index ``|A ∩ B| / |A ∪ B|`` (1 when both
  are empty), averaged over rows: the stop set's agreement between versions, the batch
  agreement between the model and a 1-NN rule, and the batch easiness (the previous
  model's sets against the labels: the example-based accuracy of Godbole and Sarawagi 2004);
- **uncertainty** and **confidence** are those of each class's binary decision averaged
  over the classes, so that a stopping threshold reads as for a two-class model;
- labelers' agreement is Cohen's or Fleiss' kappa **per class** (chose it or not).

Pure functions; they never read the store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from active_labeling.errors import InputError
from active_labeling.metrics._checks import check_features, check_same_width
from active_labeling.metrics.labels import labeler_agreement
from active_labeling.samplers.multilabel_scores import check_binary_proba


def check_sets(Y, what: str) -> np.ndarray:
    """An indicator matrix of label sets (0/1, 2-D), as an int array."""
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise InputError(
            f"{what} must be an indicator matrix (rows x classes), got shape {Y.shape}"
        )
    if not np.isin(Y, (0, 1)).all():
        row = int(np.flatnonzero(~np.isin(Y, (0, 1)).all(axis=1))[0])
        raise InputError(f"{what} row {row} holds a value other than 0 and 1")
    return Y.astype(np.int64)


def _check_pair(A, B, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    A, B = check_sets(A, a), check_sets(B, b)
    if A.shape != B.shape:
        raise InputError(f"{a} has shape {A.shape} but {b} has shape {B.shape}")
    if A.shape[0] == 0:
        raise InputError(f"{a} is empty: there is no row to compare")
    return A, B


def jaccard_rows(A, B) -> np.ndarray:
    """Each row's Jaccard index between the sets of ``A`` and ``B``; 1 where both are empty.

    Examples
    --------
    >>> jaccard_rows([[1, 1, 0], [0, 0, 0], [1, 0, 0]], [[1, 0, 0], [0, 0, 0], [0, 1, 0]])
    array([0.5, 1. , 0. ])
    """
    A, B = _check_pair(A, B, "A", "B")
    both = (A & B).sum(axis=1)
    either = (A | B).sum(axis=1)
    return np.where(either > 0, both / np.maximum(either, 1), 1.0)


def set_contradiction_ratio(previous_sets, current_sets) -> float:
    """Share of the sample whose predicted label set changed between two model versions.

    The multi-label contradiction ratio: a row counts when any class entered or left its
    predicted set (Abraham 2020's ratio, with sets for classes).

    Examples
    --------
    >>> before, now = [[1, 0], [1, 1], [0, 0], [0, 1]], [[1, 0], [1, 0], [0, 0], [0, 1]]
    >>> set_contradiction_ratio(before, now)
    0.25
    """
    A, B = _check_pair(previous_sets, current_sets, "previous_sets", "current_sets")
    return float((A != B).any(axis=1).mean())


def set_agreement(previous_sets, current_sets) -> float:
    """The mean Jaccard index between two versions' predicted sets on the stop set: the
    multi-label ``stop_set_kappa`` (Bloodgood and Vijay-Shanker 2009 stop once successive
    versions agree); 1.0 when the predictions are the same.

    Examples
    --------
    >>> set_agreement([[1, 1], [0, 1]], [[1, 0], [0, 1]])
    0.75
    """
    return float(jaccard_rows(previous_sets, current_sets).mean())


def set_batch_agreement(model_sets_new, X_new, X_labeled, Y_labeled) -> float:
    """Mean Jaccard index, on the batch, between the sets the model that chose it predicts
    and those of a 1-nearest-neighbour rule on the rows labeled before (each batch row gets
    the set of its nearest labeled row; ties: the earlier labeled row).

    Examples
    --------
    >>> set_batch_agreement([[1, 0], [0, 1]], [[0.1], [9.0]], [[0.0], [10.0]], [[1, 1], [0, 1]])
    0.75
    """
    model = check_sets(model_sets_new, "model_sets_new")
    labels = check_sets(Y_labeled, "Y_labeled")
    X_new = check_features(X_new, "X_new")
    X_labeled = check_features(X_labeled, "X_labeled")
    check_same_width(X_new, X_labeled, "X_new", "X_labeled")
    if X_labeled.shape[0] != labels.shape[0]:
        raise InputError(
            f"X_labeled has {X_labeled.shape[0]} rows but Y_labeled has {labels.shape[0]}"
        )
    nearest = NearestNeighbors(n_neighbors=1).fit(X_labeled).kneighbors(X_new)[1][:, 0]
    return float(jaccard_rows(model, labels[nearest]).mean())


def set_batch_easiness(previous_sets_new, Y_new) -> float:
    """Mean Jaccard index between the sets the previous version predicted for the batch and
    the sets the batch received: how much of it the model already knew.

    Examples
    --------
    >>> set_batch_easiness([[1, 0], [1, 1]], [[1, 0], [1, 0]])
    0.75
    """
    return float(jaccard_rows(previous_sets_new, Y_new).mean())


def binary_mean_confidence(proba) -> float:
    """Vlachos's mean confidence for a multi-label model: the mean over rows and classes of
    ``max(p, 1 - p)``, the probability of each class's predicted decision.

    Examples
    --------
    >>> binary_mean_confidence([[0.9, 0.2], [0.5, 1.0]])
    0.8
    """
    proba = check_binary_proba(proba, "proba")
    if proba.shape[0] == 0:
        raise InputError("proba is empty: there is no row to measure")
    return float(np.maximum(proba, 1.0 - proba).mean())


def binary_sample_uncertainty(proba) -> tuple[float, float]:
    """Mean and largest uncertainty of rows of a multi-label model, a row's uncertainty
    being the mean over its classes of ``min(p, 1 - p)`` (each binary decision's least
    confidence, in [0, 0.5]): Zhu et al. 2008's overall uncertainty and max-confidence.

    Examples
    --------
    >>> binary_sample_uncertainty([[0.9, 0.2], [0.5, 1.0]])
    (0.2, 0.25)
    """
    proba = check_binary_proba(proba, "proba")
    if proba.shape[0] == 0:
        raise InputError("proba is empty: there is no row to measure")
    uncertainty = np.minimum(proba, 1.0 - proba).mean(axis=1)
    return float(uncertainty.mean()), float(uncertainty.max())


def class_frequency(Y, classes: Sequence[str]) -> pd.Series:
    """Share of the labeled items holding each class (the shares sum to the label
    cardinality, not to 1), in the classes' order.

    Examples
    --------
    >>> class_frequency([[1, 0], [1, 1], [0, 0], [1, 0]], ["cat", "dog"]).to_dict()
    {'cat': 0.75, 'dog': 0.25}
    """
    Y = check_sets(Y, "Y")
    if Y.shape[1] != len(classes):
        raise InputError(f"Y has {Y.shape[1]} class columns for {len(classes)} classes")
    return pd.Series(Y.mean(axis=0) if len(Y) else 0.0, index=list(classes), name="share")


def label_cardinality(Y) -> float:
    """The mean number of classes per labeled item.

    Examples
    --------
    >>> label_cardinality([[1, 0], [1, 1], [0, 0]])
    1.0
    """
    Y = check_sets(Y, "Y")
    if Y.shape[0] == 0:
        raise InputError("Y is empty: there is no item to count")
    return float(Y.sum(axis=1).mean())


def per_class_labeler_agreement(events, classes: Sequence[str]) -> dict[str, dict]:
    """Agreement between labelers on each class, over the items two or more labeled.

    Each labeled event's set (a JSON list of classes) becomes, for class ``c``, the answer
    "holds c" or "does not"; :func:`~active_labeling.metrics.labels.labeler_agreement` then
    gives Cohen's kappa (two annotators) or Fleiss' kappa (more) per class. A label that is
    not a JSON list is left out (a label from before the project became multi-label).

    Returns
    -------
    dict
        class -> ``{"kappa", "method", "n_items", "n_annotators"}``.

    Examples
    --------
    >>> events = pd.DataFrame({
    ...     "event_id": range(1, 7),
    ...     "item_id": ["a", "a", "b", "b", "c", "c"],
    ...     "annotator": ["ann", "bob"] * 3,
    ...     "label": ['["x"]', '["x", "y"]', '["y"]', '["y"]', "[]", '["x"]'],
    ...     "status": ["labeled"] * 6,
    ... })
    >>> agreement = per_class_labeler_agreement(events, ["x", "y"])
    >>> {c: round(v["kappa"], 3) for c, v in agreement.items()}
    {'x': 0.4, 'y': 0.4}
    """
    if "label" not in getattr(events, "columns", ()):
        raise InputError("events lacks a 'label' column")
    sets = [_decoded(value) for value in events["label"]]
    usable = events.assign(_set=sets)
    usable = usable[
        [
            s is not None or status != "labeled"
            for s, status in zip(sets, usable["status"], strict=True)
        ]
    ]
    result = {}
    for c in classes:
        per_class = usable.assign(
            label=[None if s is None else ("yes" if c in s else "no") for s in usable["_set"]]
        ).drop(columns="_set")
        result[c] = labeler_agreement(per_class)
    return result


def _decoded(value) -> set | None:
    try:
        labels = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return set(labels) if isinstance(labels, list) else None
