"""TypiClust (Hacohen, Dekel and Weinshall 2022, "Active Learning on a Budget: Opposite
Strategies Suit High and Low Budgets", ICML).

With few labels, typical rows teach more than uncertain ones. The pool and the labeled set
are clustered into ``n_labeled + batch_size`` clusters; each pick goes to the largest
cluster with the fewest labeled or picked rows, and takes its most typical row: the one
with the smallest mean distance to its ``n_neighbors`` nearest neighbours in the cluster.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors

from active_labeling.samplers._validation import seed_from
from active_labeling.samplers.base import LabeledSetSampler

#: Above this many rows, clustering uses mini-batch k-means, as the authors do.
_FULL_KMEANS_MAX_ROWS = 50_000


def typicality(X: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Inverse mean distance of each row to its ``n_neighbors`` nearest other rows.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [10.0]])
    >>> typicality(X, 1).round(3)
    array([1.   , 1.   , 1.   , 0.125])
    """
    k = min(n_neighbors, X.shape[0] - 1)
    if k < 1:
        return np.ones(X.shape[0])
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    return 1.0 / (distances[:, 1:].mean(axis=1) + 1e-5)


class TypiClustSampler(LabeledSetSampler):
    """Select the most typical row of the largest uncovered clusters.

    Parameters
    ----------
    batch_size : int, default=10
        How many rows to select.
    n_neighbors : int, default=20
        Neighbours in the typicality estimate.
    min_cluster_size : int, default=5
        Clusters smaller than this are used only when no larger one is left.
    max_clusters : int, default=500
        Cap on the number of clusters (the authors cap at 500 too).
    random_state : None, int or numpy Generator, default=None
        Seed of the k-means.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (50, 2)), rng.normal(20, 1, (30, 2))])
    >>> picked = TypiClustSampler(batch_size=2, random_state=0).fit().select_samples(X)
    >>> sorted(int(i >= 50) for i in picked)
    [0, 1]
    """

    _int_params: ClassVar[dict[str, int]] = {
        **LabeledSetSampler._int_params,
        "n_neighbors": 1,
        "min_cluster_size": 1,
        "max_clusters": 1,
    }

    def __init__(
        self,
        batch_size: int = 10,
        *,
        n_neighbors: int = 20,
        min_cluster_size: int = 5,
        max_clusters: int = 500,
        random_state=None,
    ):
        self.batch_size = batch_size
        self.n_neighbors = n_neighbors
        self.min_cluster_size = min_cluster_size
        self.max_clusters = max_clusters
        self.random_state = random_state

    def select_samples(self, X) -> np.ndarray:
        """Positions of ``batch_size`` typical rows from uncovered clusters.

        ``fit(X_labeled)`` records the labeled points, which mark their clusters as covered.
        """
        X, labeled, batch_size = self._pool_and_labeled(X)
        n = X.shape[0]
        data = np.vstack([X, labeled]) if labeled.size else X
        n_clusters = max(1, min(len(labeled) + batch_size, self.max_clusters, n))
        seed = seed_from(self._rng())
        clusterer = (
            KMeans(n_clusters=n_clusters, n_init=1, random_state=seed)
            if data.shape[0] <= _FULL_KMEANS_MAX_ROWS
            else MiniBatchKMeans(n_clusters=n_clusters, n_init=3, random_state=seed)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clusters = clusterer.fit_predict(data)
        pool_clusters = clusters[:n]
        covered = np.bincount(clusters[n:], minlength=n_clusters)
        sizes = np.bincount(clusters, minlength=n_clusters)
        available = np.bincount(pool_clusters, minlength=n_clusters)
        typical: dict[int, np.ndarray] = {}
        picked = np.zeros(n, dtype=bool)
        chosen = np.empty(batch_size, dtype=np.intp)
        for j in range(batch_size):
            big_enough = (sizes >= self.min_cluster_size) & (available > 0)
            candidates = big_enough if big_enough.any() else available > 0
            # Fewest labeled or picked rows first, then the largest cluster, then the lowest id.
            ids = np.flatnonzero(candidates)
            c = int(ids[np.lexsort((ids, -sizes[ids], covered[ids]))[0]])
            members = np.flatnonzero(pool_clusters == c)
            if c not in typical:
                in_cluster = np.flatnonzero(clusters == c)
                # Typicality over the whole cluster (labeled rows included), read at its pool rows.
                scores = typicality(data[in_cluster], self.n_neighbors)
                typical[c] = scores[: members.shape[0]]  # pool rows come first in `data`
            scores = np.where(picked[members], -np.inf, typical[c])
            i = int(members[np.argmax(scores)])
            chosen[j] = i
            picked[i] = True
            covered[c] += 1
            available[c] -= 1
        return chosen
