"""What every sampler shares: the scikit-learn contract, streamed top-k, the model seam.

A sampler's constructor only stores its parameters; ``fit(X, y)`` sees the labeled data and
returns ``self``; ``select_samples(X)`` returns positions in the pool ``X``, best first.
Scored samplers also expose ``score_samples(X)`` and accept a pool streamed as chunks, with
memory bounded by one chunk plus the batch. Nothing here knows about datasets or stores.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sklearn.base import BaseEstimator, clone

from active_labeling.errors import InputError, NotFittedError
from active_labeling.samplers._validation import (
    as_generator,
    check_batch_size,
    check_features,
    check_model_input,
    effective_batch_size,
    is_chunk_stream,
    n_rows,
)
from active_labeling.samplers.scores import check_proba


def top_k(scores: np.ndarray, k: int, index: np.ndarray | None = None) -> np.ndarray:
    """Positions of the ``k`` largest scores, best first, in O(n).

    Ties break deterministically: among equal scores the smaller ``index`` (by default the
    position itself) comes first, both inside the top and at its boundary.

    Examples
    --------
    >>> top_k(np.array([0.2, 0.9, 0.5, 0.9]), 3)
    array([1, 3, 2])
    """
    n = scores.shape[0]
    if index is None:
        index = np.arange(n)
    if k < n:
        kth = np.partition(scores, n - k)[n - k]
        above = np.flatnonzero(scores > kth)
        ties = np.flatnonzero(scores == kth)
        ties = ties[np.argsort(index[ties], kind="stable")[: k - above.shape[0]]]
        pos = np.concatenate([above, ties])
    else:
        pos = np.arange(n)
    return pos[np.lexsort((index[pos], -scores[pos]))]


class BaseSampler(BaseEstimator):
    """Base class of the samplers. Subclasses implement ``select_samples``."""

    def fit(self, X=None, y=None):
        """Learn what the sampler needs from the labeled data; returns ``self``."""
        return self

    def select_samples(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def select_with_scores(self, X) -> tuple[np.ndarray, np.ndarray | None]:
        """``select_samples(X)`` and the score of each selected row (None if unscored).

        A queue stores the scores beside the ranks; samplers that rank without scoring
        each row (k-center, k-means, BADGE, TypiClust) give None.
        """
        return self.select_samples(X), None

    def _rng(self) -> np.random.Generator:
        return as_generator(getattr(self, "random_state", None))

    def _check_stream_unsupported(self, X) -> None:
        if is_chunk_stream(X):
            raise InputError(
                f"{type(self).__name__} needs the whole pool at once; pass an array or a "
                "DataFrame, not a stream of chunks"
            )

    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X_labeled, y) first"
            )


class StreamedTopK:
    """Keep the ``k`` best rows of a stream of scored chunks, and optionally their features.

    Memory holds at most one chunk plus ``k`` rows. Row positions are global: chunk after
    chunk, as if the chunks were stacked.
    """

    def __init__(self, k: int, keep_rows: bool = False):
        self.k = k
        self.keep_rows = keep_rows
        self.index = np.empty(0, dtype=np.intp)
        self.scores = np.empty(0)
        self.rows: np.ndarray | None = None
        self.n_seen = 0

    def add(self, scores: np.ndarray, rows: np.ndarray | None = None) -> None:
        n = scores.shape[0]
        local = top_k(scores, self.k)
        index = np.concatenate([self.index, self.n_seen + local])
        merged_scores = np.concatenate([self.scores, scores[local]])
        best = top_k(merged_scores, self.k, index)
        if self.keep_rows:
            stacked = rows[local] if self.rows is None else np.vstack([self.rows, rows[local]])
            self.rows = stacked[best]
        self.index, self.scores = index[best], merged_scores[best]
        self.n_seen += n


class ScoredSampler(BaseSampler):
    """A sampler that scores each row on its own and keeps the ``batch_size`` best.

    Subclasses implement ``_score_chunk(X, rng)``; the chunk is already validated. Scoring
    a pool whole or as a stream of chunks gives the same selection.
    """

    def _validate_chunk(self, X, row_offset: int):
        return check_features(X, row_offset=row_offset)

    def _score_chunk(self, X, rng) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self) -> None:
        """Hook run before scoring (for example, the fitted check)."""

    def score_samples(self, X) -> np.ndarray:
        """Score every row of the pool ``X``; higher means more worth labeling.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, d)
            The pool.

        Returns
        -------
        ndarray of shape (n,)
            One score per row.
        """
        self._check_stream_unsupported(X)
        self._prepare()
        return self._score_chunk(self._validate_chunk(X, 0), self._rng())

    def _stream(self, X, k: int, keep_rows: bool = False) -> StreamedTopK:
        """Score the pool (a matrix or a stream of chunks) keeping the top ``k``."""
        self._prepare()
        rng = self._rng()
        chunks: Iterable = X if is_chunk_stream(X) else (X,)
        best = StreamedTopK(k, keep_rows=keep_rows)
        for chunk in chunks:
            if n_rows(chunk) == 0:
                continue
            chunk = self._validate_chunk(chunk, best.n_seen)
            scores = self._score_chunk(chunk, rng)
            best.add(scores, check_features(chunk, row_offset=best.n_seen) if keep_rows else None)
        if best.n_seen == 0:
            raise InputError("pool X is empty: there is nothing to sample from")
        return best

    def select_samples(self, X) -> np.ndarray:
        """Positions of the ``batch_size`` highest-scored rows of the pool, best first.

        Parameters
        ----------
        X : array-like, DataFrame, or an iterator of chunks
            The pool. A generator (or ``PoolChunks``) of arrays or DataFrames is scored
            chunk by chunk; positions then count rows across all chunks.

        Returns
        -------
        ndarray of int
            At most ``batch_size`` distinct positions; ties go to the earlier row.
        """
        return self.select_with_scores(X)[0]

    def select_with_scores(self, X) -> tuple[np.ndarray, np.ndarray]:
        """``select_samples(X)`` and the scores of the selected rows, best first."""
        batch_size = check_batch_size(self.batch_size)
        best = self._stream(X, batch_size)
        effective_batch_size(batch_size, best.n_seen, type(self).__name__)
        return best.index, best.scores


class ModelBasedMixin:
    """The seam to a classifier: anything with ``predict_proba``.

    With ``prefit=True`` the classifier is used as given; otherwise ``fit`` fits a clone on
    the labeled data, leaving the caller's object untouched.
    """

    def _check_classifier(self, classifier) -> None:
        if not hasattr(classifier, "predict_proba"):
            raise InputError(
                f"{type(self).__name__}: classifier must have predict_proba, "
                f"got {type(classifier).__name__}"
            )

    def _fit_classifier(self, X, y):
        self._check_classifier(self.classifier)
        if self.prefit:
            self.classifier_ = self.classifier
            return self
        X, y = check_labeled(X, y, model_input=True)
        self.classifier_ = clone(self.classifier).fit(X, y)
        return self

    def _predict_proba(self, X) -> np.ndarray:
        self._check_fitted("classifier_")
        return check_proba(self.classifier_.predict_proba(X), "the classifier's predict_proba")


def check_labeled(X, y, *, model_input: bool = False):
    """Validate the labeled set given to ``fit``: features and one label per row."""
    if X is None or y is None:
        raise InputError("fit needs the labeled features X and their labels y")
    X = check_model_input(X, "labeled X") if model_input else check_features(X, "labeled X")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_rows(X):
        raise InputError(
            f"labeled y must hold one label per row of X: X has {n_rows(X)} rows, "
            f"y has shape {y.shape}"
        )
    return X, y


def take_rows(X, rows: Sequence[int] | np.ndarray):
    """Rows of an array or a DataFrame, by position."""
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]
