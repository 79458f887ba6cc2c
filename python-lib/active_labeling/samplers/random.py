"""Random sampling: the baseline every strategy must beat, and an honest one.

Each row gets a uniform random key and the ``batch_size`` largest keys win, so the pool can
be streamed and the same seed selects the same rows whether the pool comes whole or in
chunks.
"""

from __future__ import annotations

import numpy as np

from active_labeling.samplers._validation import check_model_input
from active_labeling.samplers.base import ScoredSampler


class RandomSampler(ScoredSampler):
    """Select rows uniformly at random, without replacement.

    Parameters
    ----------
    batch_size : int, default=10
        How many rows to select.
    random_state : None, int or numpy Generator, default=None
        Seed of the draw; an int gives the same selection every time.

    Examples
    --------
    >>> import numpy as np
    >>> sampler = RandomSampler(batch_size=3, random_state=0)
    >>> picked = sampler.fit().select_samples(np.zeros((100, 2)))
    >>> picked.shape, len(set(picked.tolist()))
    ((3,), 3)
    >>> np.array_equal(picked, RandomSampler(batch_size=3, random_state=0).select_samples(
    ...     np.zeros((100, 2))))
    True
    """

    def __init__(self, batch_size: int = 10, *, random_state=None):
        self.batch_size = batch_size
        self.random_state = random_state

    def _validate_chunk(self, X, row_offset: int):
        # The keys ignore the values, so a DataFrame of any columns will do; a numeric
        # array is still checked, since a NaN there means broken input.
        return check_model_input(X, row_offset=row_offset)

    def _score_chunk(self, X, rng, row_offset: int = 0) -> np.ndarray:
        return rng.random(X.shape[0])
