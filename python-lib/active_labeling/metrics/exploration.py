"""Exploration: how far newly labeled rows lie from what was labeled before.

Distances are computed block by block (``pairwise_distances_chunked``): only the nearest
distance of each row is kept, never a full rows x labeled-rows matrix.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import pairwise_distances_chunked

from active_labeling.errors import InputError
from active_labeling.metrics._checks import check_features, check_same_width


def nearest_distances(X_from, X_to, metric: str = "euclidean", working_memory=None):
    """Distance from each row of ``X_from`` to its nearest row of ``X_to``.

    Parameters
    ----------
    X_from : array-like of shape (n, d)
    X_to : array-like of shape (m, d)
    metric : str
        Any metric ``sklearn.metrics.pairwise_distances`` accepts.
    working_memory : int, optional
        MB for one block of distances (scikit-learn's default when None).

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> nearest_distances([[3, 4], [0, 1]], [[0, 0], [10, 10]])
    array([5., 1.])
    """
    X_from = check_features(X_from, "X_from")
    X_to = check_features(X_to, "X_to")
    check_same_width(X_from, X_to, "X_from", "X_to")
    return _nearest(X_from, X_to, metric, working_memory)


def _nearest(X_from, X_to, metric, working_memory) -> np.ndarray:
    def row_min(block, start):
        return block.min(axis=1)

    try:
        blocks = pairwise_distances_chunked(
            X_from, X_to, reduce_func=row_min, metric=metric, working_memory=working_memory
        )
        return np.concatenate(list(blocks))
    except ValueError as exc:
        raise InputError(f"metric={metric!r} cannot be used: {exc}") from None


def exploration_distance(
    X_new, X_labeled, metric: str = "euclidean", *, working_memory=None
) -> float:
    """Mean distance from each newly labeled row to the nearest earlier-labeled row.

    ``D(B_t) = 1/|B_t| * sum_{x in B_t} min_{z in L_{t-1}} d(x, z)``, with ``B_t`` the batch
    labeled since the last model version and ``L_{t-1}`` the rows labeled before it. In the
    spirit of the tutorial's exploration metric ("Did we explore the sample space
    enough?"): a strategy that keeps labeling next to known rows scores low; one that
    reaches unexplored regions scores high. Values depend on the feature scale: compare
    them within one project.

    Parameters
    ----------
    X_new : array-like of shape (n_new, d)
        Features of the new batch.
    X_labeled : array-like of shape (n_labeled, d)
        Features of the rows labeled before the batch.
    metric : str
        Any metric ``sklearn.metrics.pairwise_distances`` accepts.

    Returns
    -------
    float

    Raises
    ------
    InputError
        If either set is empty (the first batch has nothing to be compared with), the
        widths differ, a value is not finite, or the metric is unknown.

    Examples
    --------
    Distances 5 and 1 to the labeled row at the origin:

    >>> exploration_distance([[3, 4], [0, 1]], [[0, 0]])
    3.0
    """
    X_new = check_features(X_new, "X_new")
    X_labeled = check_features(X_labeled, "X_labeled")
    check_same_width(X_new, X_labeled, "X_new", "X_labeled")
    return float(_nearest(X_new, X_labeled, metric, working_memory).mean())


def exploration_gain(
    X_reference,
    X_labeled,
    X_new,
    metric: str = "euclidean",
    *,
    average: bool = True,
    working_memory=None,
) -> float:
    """How much closer the batch brings a reference sample to the labeled set.

    The tutorial ("Did we explore the sample space enough?") defines, on an independent
    unlabeled set ``D_Te``::

        EG(t) = sum_{x in D_Te} d(x, L_{t-1}) - sum_{x in D_Te} d(x, L_t)

    with ``d(x, L) = min_{z in L} d(x, z)`` and ``L_t = L_{t-1} ∪ B_t``. It is never
    negative (adding rows can only bring the nearest labeled row closer) and it shrinks as
    the space gets covered: a gain near 0 means the batch explored nothing new.

    The tutorial writes a sum, which grows with the size of ``D_Te``. By default this
    function divides it by ``|D_Te|`` (``average=True``), so that the value is a distance
    and does not change when the reference sample grows; ``average=False`` gives the
    tutorial's sum. As reference set use a fixed sample of the pool (the contradiction
    sample serves).

    Parameters
    ----------
    X_reference : array-like of shape (n_ref, d)
        The fixed reference sample ``D_Te``.
    X_labeled : array-like of shape (n_labeled, d)
        Rows labeled before the batch (``L_{t-1}``); must not be empty.
    X_new : array-like of shape (n_new, d)
        The batch ``B_t``.
    metric : str
        Any metric ``sklearn.metrics.pairwise_distances`` accepts.
    average : bool
        Divide by ``|D_Te|`` (default) or return the tutorial's sum.

    Returns
    -------
    float, >= 0

    Examples
    --------
    Reference rows at 0 and 10 on a line, labeled row at 0, new row at 8: the second
    reference row moves from distance 10 to 2, a gain of 8 in total, 4 on average.

    >>> exploration_gain([[0], [10]], [[0]], [[8]])
    4.0
    >>> exploration_gain([[0], [10]], [[0]], [[8]], average=False)
    8.0
    """
    X_reference = check_features(X_reference, "X_reference")
    X_labeled = check_features(X_labeled, "X_labeled")
    X_new = check_features(X_new, "X_new")
    check_same_width(X_reference, X_labeled, "X_reference", "X_labeled")
    check_same_width(X_reference, X_new, "X_reference", "X_new")
    before = _nearest(X_reference, X_labeled, metric, working_memory)
    to_new = _nearest(X_reference, X_new, metric, working_memory)
    gain = np.maximum(before - to_new, 0.0)
    return float(gain.mean() if average else gain.sum())
