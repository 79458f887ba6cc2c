"""Uncertainty sampling: the rows the model is least sure about.

Least confidence, margin and entropy (Settles 2009, "Active Learning Literature Survey",
section 3.1). The scores come from :mod:`active_labeling.samplers.scores`; these samplers
add the model and stream the pool. Margin is the baseline to beat on tabular data.
"""

from __future__ import annotations

import numpy as np

from active_labeling.samplers.base import ModelBasedMixin, ScoredSampler
from active_labeling.samplers.scores import get_score_function


class _UncertaintySampler(ModelBasedMixin, ScoredSampler):
    _score_name = "margin"

    def __init__(self, classifier, batch_size: int = 10, *, prefit: bool = False):
        self.classifier = classifier
        self.batch_size = batch_size
        self.prefit = prefit

    def fit(self, X=None, y=None):
        """Fit a clone of the classifier on the labeled data (or take it as is if prefit).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_labeled, d), optional with ``prefit``
        y : array-like of shape (n_labeled,), optional with ``prefit``

        Returns
        -------
        self
        """
        return self._fit_classifier(X, y)

    def _prepare(self) -> None:
        self._check_fitted("classifier_")

    def _score_chunk(self, X, rng, row_offset: int = 0) -> np.ndarray:
        # _predict_proba has validated the probabilities: score them without a second check.
        return get_score_function(self._score_name, checked=True)(
            self._predict_proba(X, row_offset)
        )


class LeastConfidenceSampler(_UncertaintySampler):
    """Select the rows whose most probable class has the lowest probability.

    Score ``1 - p1`` (:func:`~active_labeling.samplers.scores.least_confidence`).

    Parameters
    ----------
    classifier : estimator with ``predict_proba``
        The model whose uncertainty is measured.
    batch_size : int, default=10
        How many rows to select.
    prefit : bool, default=False
        Use ``classifier`` as given instead of fitting a clone in ``fit``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> X_lab, y_lab = [[0.0], [1.0], [4.0], [5.0]], [0, 0, 1, 1]
    >>> pool = [[0.5], [2.4], [4.5], [2.6]]
    >>> sampler = LeastConfidenceSampler(LogisticRegression(), batch_size=2)
    >>> sampler.fit(X_lab, y_lab).select_samples(pool)
    array([1, 3])
    """

    _score_name = "least_confidence"


class MarginSampler(_UncertaintySampler):
    """Select the rows with the smallest gap between the two most probable classes.

    Score ``1 - (p1 - p2)`` (:func:`~active_labeling.samplers.scores.margin`).

    Parameters
    ----------
    classifier : estimator with ``predict_proba``
        The model whose uncertainty is measured.
    batch_size : int, default=10
        How many rows to select.
    prefit : bool, default=False
        Use ``classifier`` as given instead of fitting a clone in ``fit``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> X_lab, y_lab = [[0.0], [1.0], [4.0], [5.0]], [0, 0, 1, 1]
    >>> sampler = MarginSampler(LogisticRegression(), batch_size=1).fit(X_lab, y_lab)
    >>> sampler.select_samples([[0.5], [2.5], [4.5]])
    array([1])
    >>> sampler.score_samples([[2.5]]).round(2)
    array([1.])
    """

    _score_name = "margin"


class EntropySampler(_UncertaintySampler):
    """Select the rows whose predicted class distribution has the highest entropy.

    Score ``-sum p log p / log k`` (:func:`~active_labeling.samplers.scores.entropy`).

    Parameters
    ----------
    classifier : estimator with ``predict_proba``
        The model whose uncertainty is measured.
    batch_size : int, default=10
        How many rows to select.
    prefit : bool, default=False
        Use ``classifier`` as given instead of fitting a clone in ``fit``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> X_lab, y_lab = [[0.0], [1.0], [4.0], [5.0]], [0, 0, 1, 1]
    >>> sampler = EntropySampler(LogisticRegression(), batch_size=2).fit(X_lab, y_lab)
    >>> sampler.select_samples([[0.5], [2.5], [9.0], [2.0]])
    array([1, 3])
    """

    _score_name = "entropy"
