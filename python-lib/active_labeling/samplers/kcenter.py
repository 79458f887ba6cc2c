"""Core-set sampling by k-center greedy (Sener and Savarese 2018, "Active Learning for
Convolutional Neural Networks: A Core-Set Approach", Algorithm 1).

Each pick is the pool row farthest from everything labeled or picked so far: a
2-approximation of the smallest radius of balls around the picks that cover the pool.
Memory is O(n): one distance per pool row, updated in place; never an n x n matrix.
"""

from __future__ import annotations

import numpy as np

from active_labeling.samplers._geometry import (
    min_squared_distances,
    squared_distances_to,
    squared_norms,
)
from active_labeling.samplers.base import LabeledSetSampler


class KCenterGreedySampler(LabeledSetSampler):
    """Farthest-first traversal of the pool, starting from the labeled set.

    Parameters
    ----------
    batch_size : int, default=10
        How many rows to select.
    random_state : None, int or numpy Generator, default=None
        Picks the first row when nothing is labeled; otherwise unused.

    Examples
    --------
    >>> import numpy as np
    >>> sampler = KCenterGreedySampler(batch_size=2).fit(np.array([[0.0, 0.0]]))
    >>> sampler.select_samples(np.array([[1.0, 0], [5, 0], [-4, 0], [0.5, 0.5]]))
    array([1, 2])
    """

    def __init__(self, batch_size: int = 10, *, random_state=None):
        self.batch_size = batch_size
        self.random_state = random_state

    def select_samples(self, X) -> np.ndarray:
        """Positions of ``batch_size`` rows in farthest-first order.

        ``fit(X_labeled)`` records the points the traversal starts from; with none, the
        first pick is random.
        """
        X, labeled, batch_size = self._pool_and_labeled(X)
        n = X.shape[0]
        # Relative to the mean, |x|^2 + |c|^2 - 2 x.c keeps its precision on columns with a
        # large offset (ids, timestamps); distances do not change, and X is not copied.
        origin = X.mean(axis=0)
        norms = squared_norms(X, origin)
        nearest = min_squared_distances(X, labeled, norms, origin) if labeled.size else None
        chosen = np.empty(batch_size, dtype=np.intp)
        for j in range(batch_size):
            if nearest is None:
                i = int(self._rng().integers(n))
                nearest = np.full(n, np.inf)
            else:
                i = int(np.argmax(nearest))  # ties: the earliest row
            chosen[j] = i
            np.minimum(nearest, squared_distances_to(X, X[i], norms, origin), out=nearest)
            nearest[i] = -1.0  # never picked twice, even among duplicates at distance 0
        return chosen
