"""Query strategies for multi-label models: items hold sets of classes.

A multi-label model gives one independent probability per class (an (n, k) matrix whose rows
need not sum to 1); the scores are those of :mod:`active_labeling.samplers.multilabel_scores`.
Every sampler here scores each row on its own, so the pool streams in chunks, and fits on
the labeled rows with their label sets as an (n, k) indicator matrix. A single-label model
is refused at ``fit``, naming the strategies that take it; the diversity strategies
(``KCenterGreedySampler``, ``WKMeansSampler`` with a binary uncertainty, ``BADGESampler``)
take multi-label models too.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from active_labeling.errors import InputError
from active_labeling.samplers.base import (
    ModelBasedMixin,
    ScoredSampler,
    check_label_sets,
    check_labeled,
)
from active_labeling.samplers.multilabel_scores import (
    _cardinality_inconsistency,
    _max_binary_uncertainty,
    _mean_binary_uncertainty,
    _mmc_scores,
    _sorted_features,
    mmc_order,
    sorted_probability_features,
)


class _MultiLabelSampler(ModelBasedMixin, ScoredSampler):
    _labels = "multi"

    def __init__(self, classifier, batch_size: int = 10, *, prefit: bool = False):
        self.classifier = classifier
        self.batch_size = batch_size
        self.prefit = prefit

    def fit(self, X=None, y=None):
        """Fit a clone of the multi-label classifier on the labeled rows and their label
        sets (or take it as is if prefit).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_labeled, d), optional with ``prefit``
        y : array-like of shape (n_labeled, k), optional with ``prefit``
            One row of 0/1 per item, one column per class.

        Returns
        -------
        self
        """
        return self._fit_classifier(X, y)

    def _prepare(self) -> None:
        self._check_fitted("classifier_")


class MeanBinaryUncertaintySampler(_MultiLabelSampler):
    """Select the rows whose classes are, on average, the most uncertain.

    Score: the mean over the classes of ``1 - |2 p_j - 1|``
    (:func:`~active_labeling.samplers.multilabel_scores.mean_binary_uncertainty`).

    Parameters
    ----------
    classifier : multi-label estimator with ``predict_proba``
        For instance ``OneVsRestClassifier(LogisticRegression())``.
    batch_size : int, default=10
        How many rows to select.
    prefit : bool, default=False
        Use ``classifier`` as given instead of fitting a clone in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> X = np.array([[0.0], [1], [4], [5]]); Y = np.array([[0, 1], [0, 1], [1, 0], [1, 1]])
    >>> sampler = MeanBinaryUncertaintySampler(OneVsRestClassifier(LogisticRegression()), 1)
    >>> sampler.fit(X, Y).select_samples([[0.0], [2.5], [9.0]])
    array([1])
    """

    def _score_chunk(self, X, rng, row_offset: int = 0) -> np.ndarray:
        return _mean_binary_uncertainty(self._predict_proba(X, row_offset))


class MaxBinaryUncertaintySampler(_MultiLabelSampler):
    """Select the rows holding the single most uncertain class decision.

    Score: the largest ``1 - |2 p_j - 1|`` over the classes
    (:func:`~active_labeling.samplers.multilabel_scores.max_binary_uncertainty`).

    Parameters
    ----------
    classifier : multi-label estimator with ``predict_proba``
        For instance ``OneVsRestClassifier(LogisticRegression())``.
    batch_size : int, default=10
        How many rows to select.
    prefit : bool, default=False
        Use ``classifier`` as given instead of fitting a clone in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> X = np.array([[0.0], [1], [4], [5]]); Y = np.array([[0, 1], [0, 1], [1, 0], [1, 1]])
    >>> sampler = MaxBinaryUncertaintySampler(OneVsRestClassifier(LogisticRegression()), 1)
    >>> sampler.fit(X, Y).select_samples([[0.0], [2.5], [9.0]])
    array([1])
    """

    def _score_chunk(self, X, rng, row_offset: int = 0) -> np.ndarray:
        return _max_binary_uncertainty(self._predict_proba(X, row_offset))


class MMCSampler(_MultiLabelSampler):
    """Select the rows whose labels would most reduce the expected loss (MMC).

    Maximum loss reduction with maximal confidence (Yang, Sun, Wang and Chen 2009,
    "Effective multi-label active learning for text classification", KDD).

    1. ``fit`` learns how many classes an item holds: a logistic regression from each
       labeled row's probabilities, sorted from largest to smallest and divided by their
       sum, to its number of classes (the paper's section 4.2).
    2. For a pool row, the most confident label vector holds the predicted number of
       classes of largest probability; the score is the loss reduction expected from
       labeling it, ``1/k sum_j (1 - yhat_j (2 p_j - 1)) / 2``
       (:func:`~active_labeling.samplers.multilabel_scores.mmc_scores`).

    The paper's SVM outputs ``f_j(x)`` become ``2 p_j - 1`` here, so that any model with
    probabilities serves. ``fit`` needs the labeled rows and their label sets even with
    ``prefit=True``: they train the label-count model.

    Parameters
    ----------
    classifier : multi-label estimator with ``predict_proba``
        For instance ``OneVsRestClassifier(LogisticRegression())``.
    batch_size : int, default=10
        How many rows to select.
    prefit : bool, default=False
        Use ``classifier`` as given instead of fitting a clone in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3)); Y = (X > 0).astype(int)
    >>> sampler = MMCSampler(OneVsRestClassifier(LogisticRegression()), 5).fit(X, Y)
    >>> sampler.label_counts_.classes_.tolist()
    [0, 1, 2, 3]
    >>> len(set(sampler.select_samples(rng.normal(size=(100, 3))).tolist()))
    5
    """

    def fit(self, X=None, y=None):
        """Fit the classifier (unless prefit) and the label-count model on the labeled rows.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_labeled, d)
        y : array-like of shape (n_labeled, k)
            One row of 0/1 per item, one column per class.

        Returns
        -------
        self
        """
        if X is None or y is None:
            raise InputError(
                "MMCSampler: fit needs the labeled rows X and their label sets y, even with "
                "prefit=True: they train the model of how many classes an item holds"
            )
        self._fit_classifier(X, y)
        X, Y = check_labeled(X, y, model_input=True, multilabel=True)
        Y = check_label_sets(Y)
        proba = self._predict_proba(X)
        if Y.shape[1] != proba.shape[1]:
            raise InputError(
                f"MMCSampler: labeled y has {Y.shape[1]} class columns but the classifier "
                f"gives {proba.shape[1]} probabilities"
            )
        counts = Y.sum(axis=1)
        if np.unique(counts).shape[0] < 2:
            # Every labeled item holds the same number of classes: the count is that.
            self.label_counts_ = _ConstantCount(int(counts[0]))
        else:
            self.label_counts_ = LogisticRegression(max_iter=1000).fit(
                sorted_probability_features(proba), counts
            )
        return self

    def _prepare(self) -> None:
        super()._prepare()
        self._check_fitted("label_counts_")

    def _score_chunk(self, X, rng, row_offset: int = 0) -> np.ndarray:
        proba = self._predict_proba(X, row_offset)
        # One sort serves both: the count model's features and the most confident vector.
        order = mmc_order(proba)
        features = _sorted_features(np.take_along_axis(proba, order, axis=1))
        counts = self.label_counts_.predict(features)
        return _mmc_scores(proba, np.asarray(counts, dtype=np.int64), order)


class _ConstantCount:
    """The label-count model when every labeled item holds the same number of classes."""

    def __init__(self, count: int):
        self.count = count
        self.classes_ = np.array([count])

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.full(features.shape[0], self.count)


class LabelCardinalitySampler(_MultiLabelSampler):
    """Select the rows predicted with an unusual number of classes.

    Label cardinality inconsistency (Li and Guo 2013, "Active learning with multi-label
    SVM classification", IJCAI).

    Score: ``|#{j : p_j >= t_j} - c_L| / k``, the distance between the number of classes
    predicted for a row and ``c_L``, the mean number of classes of the labeled items
    (:func:`~active_labeling.samplers.multilabel_scores.cardinality_inconsistency`). The
    score takes few values (multiples of 1/k around ``c_L``), so many rows tie; ties go to
    the earlier row.

    Parameters
    ----------
    classifier : multi-label estimator with ``predict_proba``
        For instance ``OneVsRestClassifier(LogisticRegression())``.
    batch_size : int, default=10
        How many rows to select.
    thresholds : sequence of float, optional
        The probability from which each class is predicted (a saved model's per-class
        thresholds); None: 0.5 for every class.
    prefit : bool, default=False
        Use ``classifier`` as given instead of fitting a clone in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> X = np.array([[0.0], [1], [4], [5]]); Y = np.array([[0, 1], [0, 1], [1, 0], [1, 0]])
    >>> sampler = LabelCardinalitySampler(OneVsRestClassifier(LogisticRegression()), 1)
    >>> sampler.fit(X, Y).mean_cardinality_
    1.0
    """

    def __init__(self, classifier, batch_size: int = 10, *, thresholds=None, prefit: bool = False):
        super().__init__(classifier, batch_size, prefit=prefit)
        self.thresholds = thresholds

    def fit(self, X=None, y=None):
        """Fit the classifier (unless prefit) and record the labeled items' mean number of
        classes.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_labeled, d), optional with ``prefit``
        y : array-like of shape (n_labeled, k)
            One row of 0/1 per item, one column per class.

        Returns
        -------
        self
        """
        if y is None:
            raise InputError(
                "LabelCardinalitySampler: fit needs the labeled label sets y, even with "
                "prefit=True: the score compares each row with their mean number of classes"
            )
        self._fit_classifier(X, y)
        Y = check_label_sets(y)
        self.mean_cardinality_ = float(Y.sum(axis=1).mean()) if Y.shape[0] else 0.0
        return self

    def _prepare(self) -> None:
        super()._prepare()
        self._check_fitted("mean_cardinality_")

    def _thresholds(self, k: int) -> np.ndarray:
        if self.thresholds is None:
            return np.full(k, 0.5)
        thresholds = np.asarray(self.thresholds, dtype=np.float64)
        if thresholds.shape != (k,) or not ((thresholds >= 0) & (thresholds <= 1)).all():
            raise InputError(
                f"LabelCardinalitySampler: thresholds must be {k} probabilities (one per "
                f"class), got {self.thresholds!r}"
            )
        return thresholds

    def _score_chunk(self, X, rng, row_offset: int = 0) -> np.ndarray:
        proba = self._predict_proba(X, row_offset)
        return _cardinality_inconsistency(
            proba, self._thresholds(proba.shape[1]), self.mean_cardinality_
        )
