"""Rank by an uncertainty the user's own model computed: the "precomputed" input.

A team whose model runs elsewhere (a detector, a speech model, a large language model)
scores each item itself, one number per item, higher for "more worth labeling", in a
column of the dataset or in a file; this sampler selects the highest. It works for any task
type: it never looks at the items, only at their numbers.
"""

from __future__ import annotations

import numpy as np

from active_labeling.errors import InputError
from active_labeling.samplers.base import ScoredSampler


class PrecomputedSampler(ScoredSampler):
    """Select the rows with the highest uncertainty given per row by the user's own model.

    Parameters
    ----------
    batch_size : int, default=10
        How many rows to select.

    ``X`` is the uncertainties: an array of shape (n,) or (n, 1), finite numbers.

    Examples
    --------
    >>> import numpy as np
    >>> sampler = PrecomputedSampler(batch_size=2).fit()
    >>> sampler.select_samples(np.array([0.1, 0.9, 0.5, 0.9]))
    array([1, 3])
    """

    def __init__(self, batch_size: int = 10):
        self.batch_size = batch_size

    def _validate_chunk(self, X, row_offset: int):
        values = np.asarray(X, dtype=float)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise InputError(
                f"the uncertainties must be one number per row, got shape {values.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise InputError(
                f"uncertainty of row {row_offset + int(bad[0]) + 1} is {values[bad[0]]}: "
                "every uncertainty must be a finite number"
            )
        return values

    def _score_chunk(self, X, rng, row_offset: int = 0) -> np.ndarray:
        return X
