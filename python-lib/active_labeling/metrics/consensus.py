"""One label per item from the labels of several labelers: majority vote and Dawid-Skene.

Items labeled by two or more labelers (the overlap items, or any item labeled twice) need
a decision. :func:`majority_vote` takes the most frequent label, with a tie rule;
:func:`dawid_skene` (Dawid and Skene 1979, "Maximum likelihood estimation of observer
error-rates using the EM algorithm") estimates each labeler's confusion matrix and weighs
their labels by it, so a careful labeler outvotes two careless ones. Both return, per item,
the consensus label, its confidence and how many labels it rests on; Dawid-Skene also each
labeler's estimated accuracy. Pure functions: a frame of labels in, frames out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from active_labeling.errors import InputError

_COLUMNS = ("item_id", "annotator", "label")


def _check(labels: pd.DataFrame, classes=None) -> tuple[pd.DataFrame, list]:
    if not isinstance(labels, pd.DataFrame):
        raise InputError(f"labels must be a DataFrame, got {type(labels).__name__}")
    missing = [c for c in _COLUMNS if c not in labels.columns]
    if missing:
        raise InputError(f"labels has no column {missing[0]!r}; it needs {', '.join(_COLUMNS)}")
    frame = labels.loc[:, list(_COLUMNS)].dropna(subset=["label"])
    if frame.duplicated(["item_id", "annotator"]).any():
        row = frame[frame.duplicated(["item_id", "annotator"])].iloc[0]
        raise InputError(
            f"labels holds two labels of annotator {row['annotator']!r} for item "
            f"{row['item_id']!r}; give each labeler's latest label only"
        )
    if classes is None:
        classes = sorted(frame["label"].unique(), key=str)
    else:
        classes = list(classes)
        unknown = sorted(set(frame["label"]) - set(classes), key=str)
        if unknown:
            raise InputError(f"label {unknown[0]!r} is not one of the classes {classes}")
    return frame, classes


def majority_vote(labels: pd.DataFrame, classes=None, *, tie: str = "none") -> pd.DataFrame:
    """The most frequent label of each item.

    Parameters
    ----------
    labels : DataFrame
        One row per (item, labeler): ``item_id``, ``annotator``, ``label``.
    classes : sequence, optional
        The project's classes, in its order (default: the labels seen, sorted).
    tie : {"none", "first"}
        A tie gives no consensus (``"none"``, the label is None and the item goes to
        review) or the tied class first in ``classes`` (``"first"``).

    Returns
    -------
    DataFrame
        One row per item: ``item_id``, ``label``, ``confidence`` (the share of its labels
        that agree with it), ``n_labels``, ``unanimous``.

    Examples
    --------
    >>> labels = pd.DataFrame({"item_id": ["a", "a", "a", "b", "b"],
    ...                        "annotator": ["x", "y", "z", "x", "y"],
    ...                        "label": ["cat", "cat", "dog", "cat", "dog"]})
    >>> votes = majority_vote(labels)
    >>> votes[["label", "n_labels", "unanimous"]].to_dict("list")
    {'label': ['cat', None], 'n_labels': [3, 2], 'unanimous': [False, False]}
    >>> round(float(votes["confidence"][0]), 3)
    0.667
    >>> majority_vote(labels, tie="first")["label"].tolist()
    ['cat', 'cat']
    """
    if tie not in ("none", "first"):
        raise InputError(f"tie must be 'none' or 'first', got {tie!r}")
    frame, classes = _check(labels, classes)
    order = {c: i for i, c in enumerate(classes)}
    counts = frame.groupby(["item_id", "label"], sort=False).size().rename("votes").reset_index()
    counts["order"] = counts["label"].map(order)
    # Per item, best first: most votes, then first in the classes' order (vectorized: one
    # sort, then the first and second row of each item).
    counts = counts.sort_values(["item_id", "votes", "order"], ascending=[True, False, True])
    rank = counts.groupby("item_id", sort=False).cumcount()
    best = counts[rank == 0].set_index("item_id")
    second = counts[rank == 1].set_index("item_id")["votes"].reindex(best.index)
    n_labels = frame.groupby("item_id", sort=False).size().reindex(best.index)
    distinct = counts.groupby("item_id", sort=False).size().reindex(best.index)
    tied = (second == best["votes"]).to_numpy()
    labels_out = best["label"].to_numpy(dtype=object)
    if tie == "none":
        labels_out = np.where(tied, None, labels_out)
    result = pd.DataFrame(
        {
            "item_id": best.index.to_numpy(),
            "confidence": (best["votes"] / n_labels).to_numpy(dtype=float),
            "n_labels": n_labels.to_numpy(dtype=int),
            "unanimous": (distinct == 1).to_numpy(),
        }
    )
    # Object, so that "no consensus" stays None (a string column would make it NaN).
    result.insert(1, "label", pd.Series(labels_out, dtype=object, index=result.index))
    return result


def dawid_skene(
    labels: pd.DataFrame, classes=None, *, max_iter: int = 100, tol: float = 1e-6
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dawid and Skene 1979: consensus labels weighted by each labeler's estimated errors.

    EM over the true class of each item: starting from the majority vote's class shares,
    the M step estimates the class priors and each labeler's confusion matrix
    ``pi[a][j, l] = P(a says l | true class j)`` (with add-one smoothing, so a labeler seen
    on few items is not certain to be right or wrong), the E step the posterior of each
    item's class. Deterministic: the same labels give the same result.

    Returns
    -------
    (DataFrame, DataFrame)
        Per item: ``item_id``, ``label`` (the class of largest posterior), ``confidence``
        (that posterior), ``n_labels``, ``unanimous``; per labeler: ``annotator``,
        ``accuracy`` (estimated: the share of their labels the model thinks right),
        ``n_labels``.

    Examples
    --------
    Labeler z contradicts x and y on every item; on the last item x and y are split and
    z's label is worth little:

    >>> labels = pd.DataFrame({
    ...     "item_id": ["a", "a", "a", "b", "b", "b", "c", "c", "c", "d", "d", "d"],
    ...     "annotator": ["x", "y", "z"] * 4,
    ...     "label": ["cat", "cat", "dog", "dog", "dog", "cat", "cat", "cat", "dog",
    ...               "cat", "dog", "dog"]})
    >>> items, labelers = dawid_skene(labels)
    >>> items["label"].tolist()
    ['cat', 'dog', 'cat', 'cat']
    >>> labelers.set_index("annotator")["accuracy"].round(2).to_dict()  # smoothed: 4 items
    {'x': 0.81, 'y': 0.7, 'z': 0.19}
    """
    frame, classes = _check(labels, classes)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise InputError(f"max_iter must be a positive integer, got {max_iter!r}")
    items = pd.Index(pd.unique(frame["item_id"]))
    annotators = pd.Index(sorted(pd.unique(frame["annotator"]), key=str))
    k = len(classes)
    i = items.get_indexer(frame["item_id"])
    a = annotators.get_indexer(frame["annotator"])
    c = pd.Index(classes).get_indexer(frame["label"])
    n_items, n_ann = len(items), len(annotators)
    # Start from the vote shares of each item.
    T = np.zeros((n_items, k))
    np.add.at(T, (i, c), 1.0)
    T /= T.sum(axis=1, keepdims=True)
    previous = None
    for _ in range(max_iter):
        priors = (T.sum(axis=0) + 1.0) / (n_items + k)
        confusion = np.ones((n_ann, k, k))  # add-one smoothing
        np.add.at(confusion, (a, slice(None), c), T[i])
        confusion /= confusion.sum(axis=2, keepdims=True)
        log_post = np.tile(np.log(priors), (n_items, 1))
        np.add.at(log_post, i, np.log(confusion[a, :, c]))
        log_post -= log_post.max(axis=1, keepdims=True)
        T = np.exp(log_post)
        T /= T.sum(axis=1, keepdims=True)
        if previous is not None and np.abs(T - previous).max() < tol:
            break
        previous = T
    best = T.argmax(axis=1)
    n_labels = np.bincount(i, minlength=n_items)
    distinct = frame.groupby("item_id", sort=False)["label"].nunique().reindex(items)
    per_item = pd.DataFrame(
        {
            "item_id": items,
            "label": [classes[j] for j in best],
            "confidence": T[np.arange(n_items), best],
            "n_labels": n_labels,
            "unanimous": (distinct == 1).to_numpy(),
        }
    )
    right = T[i, c]  # the posterior that each label is the true class
    per_labeler = pd.DataFrame(
        {
            "annotator": annotators,
            "accuracy": np.bincount(a, weights=right, minlength=n_ann)
            / np.bincount(a, minlength=n_ann),
            "n_labels": np.bincount(a, minlength=n_ann),
        }
    )
    return per_item, per_labeler


def majority_per_class(labels: pd.DataFrame, classes, *, tie: str = "none") -> pd.DataFrame:
    """Multi-label consensus: each class is in an item's consensus when more than half of
    its labelers chose it.

    ``label`` in ``labels`` holds each labeler's chosen classes (a list, possibly empty).
    A class chosen by exactly half the labelers is a tie: the item has no consensus
    (``tie="none"``, the label is None) or the class is left out (``tie="first"``, the
    cautious reading). ``confidence`` is the agreement on the least agreed class (the share
    of labelers on the majority side), so 1.0 means every labeler chose the same classes.

    Returns one row per item: ``item_id``, ``label`` (a list of classes in ``classes``'
    order, or None), ``confidence``, ``n_labels``, ``unanimous``.

    Examples
    --------
    >>> labels = pd.DataFrame({"item_id": ["a", "a", "a", "b", "b"],
    ...                        "annotator": ["x", "y", "z", "x", "y"],
    ...                        "label": [["red"], ["red", "blue"], ["red"], ["red"], []]})
    >>> found = majority_per_class(labels, ["red", "blue"])
    >>> found["label"].tolist(), found["confidence"].round(3).tolist()
    ([['red'], None], [0.667, 0.5])
    """
    if tie not in ("none", "first"):
        raise InputError(f"tie must be 'none' or 'first', got {tie!r}")
    if not isinstance(labels, pd.DataFrame):
        raise InputError(f"labels must be a DataFrame, got {type(labels).__name__}")
    missing = [c for c in _COLUMNS if c not in labels.columns]
    if missing:
        raise InputError(f"labels has no column {missing[0]!r}; it needs {', '.join(_COLUMNS)}")
    classes = list(classes)
    rows = []
    for item, group in labels.groupby("item_id", sort=False):
        chosen = [set(value) for value in group["label"]]
        unknown = sorted(set().union(*chosen) - set(classes), key=str)
        if unknown:
            raise InputError(f"label {unknown[0]!r} is not one of the classes {classes}")
        n = len(chosen)
        counts = {c: sum(c in s for s in chosen) for c in classes}
        tied = any(2 * k == n for k in counts.values())
        label = [c for c in classes if 2 * counts[c] > n]
        rows.append(
            {
                "item_id": item,
                "label": None if tied and tie == "none" else label,
                "confidence": min(max(k, n - k) / n for k in counts.values()) if classes else 1.0,
                "n_labels": n,
                "unanimous": all(s == chosen[0] for s in chosen),
            }
        )
    result = pd.DataFrame(rows, columns=["item_id", "label", "confidence", "n_labels", "unanimous"])
    result["label"] = pd.Series([r["label"] for r in rows], dtype=object, index=result.index)
    return result
