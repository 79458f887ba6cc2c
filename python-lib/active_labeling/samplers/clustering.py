"""Representative and diverse batches by clustering.

- ``KMeansSampler`` and ``MiniBatchKMeansSampler``: representativeness alone, batch_size
  clusters on the pool and the row closest to each centroid.
- ``WKMeansSampler``: uncertainty then diversity, the two-step method of Zhdanov 2019
  ("Diverse mini-batch Active Learning", arXiv:1901.05954): keep the beta x batch_size most
  uncertain rows, run a k-means weighted by uncertainty into batch_size clusters, take the
  row closest to each centroid.
- ``IWKMeansSampler``: the incremental variant of the tutorial, where labeled points are
  fixed centroids that repel the new ones, so a noisy region is not queried again and again.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning

from active_labeling.errors import InputError
from active_labeling.samplers._geometry import (
    closest_distinct_rows,
    min_squared_distances,
    squared_norms,
)
from active_labeling.samplers._validation import (
    check_features,
    effective_batch_size,
    seed_from,
)
from active_labeling.samplers.base import (
    BaseSampler,
    ModelBasedMixin,
    ScoredSampler,
    check_same_features,
    labeled_features,
)
from active_labeling.samplers.multilabel_scores import MULTI_LABEL_SCORE_FUNCTIONS
from active_labeling.samplers.scores import get_score_function

#: Added to uncertainty weights so that a pool the model is sure about still clusters.
_WEIGHT_FLOOR = 1e-9


def _representatives(X: np.ndarray, centers: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The row closest to each center, heaviest cluster first."""
    rows = closest_distinct_rows(X, centers)
    return rows[np.argsort(-weights, kind="stable")]


def _cluster_weights(labels: np.ndarray, n_clusters: int, sample_weight=None) -> np.ndarray:
    return np.bincount(labels, weights=sample_weight, minlength=n_clusters)


class KMeansSampler(BaseSampler):
    """Select one representative row per cluster of a k-means on the pool.

    ``batch_size`` clusters; the returned rows are those closest to each centroid, the
    largest cluster first. Needs no model and no labels.

    Parameters
    ----------
    batch_size : int, default=10
        How many rows (clusters) to select.
    n_init : int, default=1
        Number of k-means restarts.
    random_state : None, int or numpy Generator, default=None
        Seed of the k-means initialisation.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0], [0.1, 0], [0, 0.1], [10, 10], [10.1, 10]])
    >>> sorted(KMeansSampler(batch_size=2, random_state=0).select_samples(X).tolist())
    [0, 3]
    """

    _int_params: ClassVar[dict[str, int]] = {**BaseSampler._int_params, "n_init": 1}

    def __init__(self, batch_size: int = 10, *, n_init: int = 1, random_state=None):
        self.batch_size = batch_size
        self.n_init = n_init
        self.random_state = random_state

    def _clusterer(self, n_clusters: int, seed: int):
        return KMeans(n_clusters=n_clusters, n_init=self.n_init, random_state=seed)

    def select_samples(self, X) -> np.ndarray:
        """Positions of one representative row per cluster, largest cluster first."""
        self._validate_params()
        self._check_stream_unsupported(X)
        X = check_features(X)
        batch_size = effective_batch_size(self.batch_size, X.shape[0], type(self).__name__)
        with warnings.catch_warnings():
            # Fewer distinct points than clusters: still one distinct row per centroid.
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = self._clusterer(batch_size, seed_from(self._rng())).fit(X)
        weights = _cluster_weights(km.labels_, batch_size)
        return _representatives(X, km.cluster_centers_, weights)


class MiniBatchKMeansSampler(KMeansSampler):
    """``KMeansSampler`` with mini-batch k-means: much faster on large pools.

    Parameters
    ----------
    batch_size : int, default=10
        How many rows (clusters) to select.
    n_init : int, default=3
        Number of mini-batch k-means restarts.
    kmeans_batch_size : int, default=4096
        Rows per mini-batch of the k-means (not the selection batch).
    random_state : None, int or numpy Generator, default=None
        Seed of the k-means.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0], [0.1, 0], [0, 0.1], [10, 10], [10.1, 10]])
    >>> sampler = MiniBatchKMeansSampler(batch_size=2, random_state=0)
    >>> sorted(int(X[i, 0] > 5) for i in sampler.select_samples(X))
    [0, 1]
    """

    _int_params: ClassVar[dict[str, int]] = {**KMeansSampler._int_params, "kmeans_batch_size": 1}

    def __init__(
        self,
        batch_size: int = 10,
        *,
        n_init: int = 3,
        kmeans_batch_size: int = 4096,
        random_state=None,
    ):
        super().__init__(batch_size, n_init=n_init, random_state=random_state)
        self.kmeans_batch_size = kmeans_batch_size

    def _clusterer(self, n_clusters: int, seed: int):
        return MiniBatchKMeans(
            n_clusters=n_clusters,
            n_init=self.n_init,
            batch_size=self.kmeans_batch_size,
            random_state=seed,
        )


class WKMeansSampler(ModelBasedMixin, ScoredSampler):
    """Two-step uncertainty and diversity sampling (Zhdanov 2019).

    1. Score the pool by uncertainty (streamed: the pool may come in chunks).
    2. Keep the ``beta * batch_size`` most uncertain rows.
    3. Run a k-means into ``batch_size`` clusters on them, weighted by uncertainty.
    4. Return the row closest to each centroid, most uncertain first.

    Parameters
    ----------
    classifier : estimator with ``predict_proba``
        The model whose uncertainty is measured.
    batch_size : int, default=10
        How many rows to select.
    beta : int, default=10
        Prefilter factor: how many uncertain candidates per selected row.
    uncertainty : {"margin", "least_confidence", "entropy", "mean_binary", "max_binary"}, \
default="margin"
        The uncertainty score of step 1; with a multi-label classifier, ``mean_binary`` or
        ``max_binary`` (the mean or largest binary uncertainty of its classes).
    prefit : bool, default=False
        Use ``classifier`` as given instead of fitting a clone in ``fit``.
    random_state : None, int or numpy Generator, default=None
        Seed of the k-means.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X_lab = np.array([[-3.0, 0], [-2, 1], [2, 0], [3, 1]]); y_lab = [0, 0, 1, 1]
    >>> pool = rng.normal(size=(200, 2))
    >>> sampler = WKMeansSampler(LogisticRegression(), batch_size=5, random_state=0)
    >>> picked = sampler.fit(X_lab, y_lab).select_samples(pool)
    >>> len(picked), len(set(picked.tolist()))
    (5, 5)
    """

    _int_params: ClassVar[dict[str, int]] = {**ScoredSampler._int_params, "beta": 1}
    _labels = "any"

    def __init__(
        self,
        classifier,
        batch_size: int = 10,
        *,
        beta: int = 10,
        uncertainty: str = "margin",
        prefit: bool = False,
        random_state=None,
    ):
        self.classifier = classifier
        self.batch_size = batch_size
        self.beta = beta
        self.uncertainty = uncertainty
        self.prefit = prefit
        self.random_state = random_state

    def fit(self, X=None, y=None):
        """Fit a clone of the classifier on the labeled data (or take it as is if prefit).

        With a multi-label classifier, ``y`` holds one row of 0/1 per item and
        ``uncertainty`` must be a binary score (``mean_binary`` or ``max_binary``).
        """
        get_score_function(self.uncertainty)
        self._fit_classifier(X, y)
        binary = self.uncertainty in MULTI_LABEL_SCORE_FUNCTIONS
        if binary != self.multilabel_:
            kind = "multi-label" if self.multilabel_ else "single-label"
            fitting = "'mean_binary' or 'max_binary'" if self.multilabel_ else "'margin'"
            raise InputError(
                f"{type(self).__name__}: uncertainty {self.uncertainty!r} does not score a "
                f"{kind} classifier's probabilities; use uncertainty={fitting}"
            )
        return self

    def _prepare(self) -> None:
        self._check_fitted("classifier_")

    def _score_chunk(self, X, rng, row_offset: int = 0) -> np.ndarray:
        proba = self._predict_proba(X, row_offset)  # validated: score without a second check
        return get_score_function(self.uncertainty, checked=True)(proba)

    def _candidates(self, X):
        """Stream the pool and keep the most uncertain rows with their features."""
        self._validate_params()
        batch_size = int(self.batch_size)
        best = self._stream(X, int(self.beta) * batch_size, keep_rows=True)
        batch_size = effective_batch_size(batch_size, best.n_seen, type(self).__name__)
        return best, batch_size

    def select_samples(self, X) -> np.ndarray:
        """Positions of ``batch_size`` uncertain and diverse rows of the pool."""
        return self.select_with_scores(X)[0]

    def select_with_scores(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The selection and the uncertainty of each selected row, most uncertain first."""
        best, batch_size = self._candidates(X)
        if best.index.shape[0] <= batch_size:
            return best.index, best.scores
        rows = self._representative_rows(best, batch_size)
        # Best rank to the most uncertain representative (ties: earlier row).
        order = np.lexsort((best.index[rows], -best.scores[rows]))
        return best.index[rows[order]], best.scores[rows[order]]

    def _representative_rows(self, best, batch_size: int) -> np.ndarray:
        """Positions in the candidates of the row closest to each weighted k-means centroid."""
        weights = best.scores + _WEIGHT_FLOOR
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(n_clusters=batch_size, n_init=1, random_state=seed_from(self._rng()))
            km.fit(best.rows, sample_weight=weights)
        return closest_distinct_rows(best.rows, km.cluster_centers_)


class IWKMeansSampler(WKMeansSampler):
    """Incremental weighted k-means: labeled points are fixed centroids.

    As ``WKMeansSampler``, but the k-means of step 3 also holds one fixed centroid per
    labeled point. A candidate closer to a labeled point than to any new centroid belongs to
    that fixed cluster and does not pull a new centroid, so new centroids go to regions the
    labeled set has not explored yet.

    Parameters
    ----------
    classifier : estimator with ``predict_proba``
        The model whose uncertainty is measured.
    batch_size : int, default=10
        How many rows to select.
    beta : int, default=10
        Prefilter factor: how many uncertain candidates per selected row.
    uncertainty : {"margin", "least_confidence", "entropy", "mean_binary", "max_binary"}, \
default="margin"
        The uncertainty score of step 1 (a binary one with a multi-label classifier).
    max_iter : int, default=100
        Maximum number of Lloyd iterations.
    prefit : bool, default=False
        Use ``classifier`` as given; ``fit(X)`` then only records the labeled points.
    random_state : None, int or numpy Generator, default=None
        Seed of the k-means++ initialisation.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X_lab = np.array([[-3.0, 0], [-2, 1], [2, 0], [3, 1]]); y_lab = [0, 0, 1, 1]
    >>> sampler = IWKMeansSampler(LogisticRegression(), batch_size=4, random_state=0)
    >>> picked = sampler.fit(X_lab, y_lab).select_samples(rng.normal(size=(300, 2)))
    >>> len(set(picked.tolist()))
    4
    """

    _int_params: ClassVar[dict[str, int]] = {**WKMeansSampler._int_params, "max_iter": 1}

    def __init__(
        self,
        classifier,
        batch_size: int = 10,
        *,
        beta: int = 10,
        uncertainty: str = "margin",
        max_iter: int = 100,
        prefit: bool = False,
        random_state=None,
    ):
        super().__init__(
            classifier,
            batch_size,
            beta=beta,
            uncertainty=uncertainty,
            prefit=prefit,
            random_state=random_state,
        )
        self.max_iter = max_iter

    def fit(self, X=None, y=None):
        """Fit the classifier (unless prefit) and record the labeled points as fixed centroids.

        A DataFrame's column names are kept in ``feature_names_in_``: a pool DataFrame whose
        columns differ from them, by name or by order, is then refused.

        Parameters
        ----------
        X : array-like of shape (n_labeled, d)
            The labeled features; optional with ``prefit`` (no fixed centroid then).
        y : array-like of shape (n_labeled,)
            Their labels; optional with ``prefit``.
        """
        super().fit(X, y)
        self.fixed_centroids_ = labeled_features(self, X)
        self._record_feature_names(X)
        return self

    def _prepare(self) -> None:
        super()._prepare()
        self._check_fitted("fixed_centroids_")

    def _validate_chunk(self, X, row_offset: int):
        # Each chunk: its rows are measured against the fixed centroids, column by column.
        self._check_feature_names(X)
        return super()._validate_chunk(X, row_offset)

    def _representative_rows(self, best, batch_size: int) -> np.ndarray:
        """The row closest to each free centroid of the incremental k-means."""
        fixed = self.fixed_centroids_
        check_same_features(best.rows, fixed)
        centers = _incremental_kmeans(
            best.rows,
            best.scores + _WEIGHT_FLOOR,
            fixed,
            batch_size,
            max_iter=self.max_iter,
            rng=self._rng(),
        )
        return closest_distinct_rows(best.rows, centers)


def _incremental_kmeans(
    X: np.ndarray,
    weights: np.ndarray,
    fixed: np.ndarray,
    n_clusters: int,
    *,
    max_iter: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Weighted Lloyd iterations where ``fixed`` centroids never move.

    Returns the ``n_clusters`` free centroids. Initialisation is weighted k-means++ that
    counts the fixed centroids as already chosen, so seeds start far from labeled points.
    """
    # Centred, the distance formula keeps its precision on columns with a large offset.
    origin = X.mean(axis=0)
    X = X - origin
    fixed = fixed - origin if fixed.size else fixed
    X_norms = squared_norms(X)
    d2_fixed = min_squared_distances(X, fixed, X_norms) if fixed.size else np.full(len(X), np.inf)

    # k-means++ seeding, weighted by uncertainty, fixed centroids already in place.
    centers = np.empty((n_clusters, X.shape[1]))
    d2 = d2_fixed.copy()
    for j in range(n_clusters):
        p = weights * np.where(np.isfinite(d2), d2, 1.0)
        total = p.sum()
        i = int(rng.choice(len(X), p=p / total)) if total > 0 else int(rng.integers(len(X)))
        centers[j] = X[i]
        np.minimum(d2, np.maximum(X_norms - 2 * X @ X[i] + X_norms[i], 0.0), out=d2)

    labels = None
    for _ in range(max_iter):
        d2_free = X_norms[:, None] - 2.0 * (X @ centers.T) + squared_norms(centers)[None, :]
        nearest = d2_free.argmin(axis=1)
        free = d2_free[np.arange(len(X)), nearest] <= d2_fixed
        new_labels = np.where(free, nearest, -1)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for j in range(n_clusters):
            members = labels == j
            w = weights[members]
            if w.sum() > 0:
                centers[j] = (X[members] * w[:, None]).sum(axis=0) / w.sum()
    return centers + origin
