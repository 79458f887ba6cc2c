"""Oracle-informed strategies: upper bounds that only a simulation can compute.

*Informed confidence* ("IConfidence", Abraham and Dreyfus-Schmidt 2021, "Sample Noise Impact
on Active Learning") is least confidence capped by how easy a sample is for a model that has
seen far more data: an *oracle* fitted on the held-out half, asked for the probability of
the sample's **true** label. A sample no model can classify (an ambiguous or mislabeled
one) gets a low cap, so the strategy spends its budget on samples that are uncertain *and*
learnable:

    score(x) = min(1 - max_k p_model(k | x), p_oracle(y_true(x) | x))

It needs the pool's true labels, which a live labeling project does not have: it is a
yardstick for the other strategies, offered by the experiment harness through
``ORACLE_STRATEGIES`` and never by ``samplers.registry``. Samplers here therefore take the
true labels in ``select_samples(X, y_true)`` (``requires_true_labels = True``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from active_labeling.errors import InputError
from active_labeling.samplers._validation import (
    as_generator,
    check_batch_size,
    effective_batch_size,
    seed_estimator,
)
from active_labeling.samplers.base import (
    BaseSampler,
    ModelBasedMixin,
    check_labeled,
    predict_proba,
    top_k,
)
from active_labeling.samplers.scores import get_score_function


def true_label_proba(model, X, y_true) -> np.ndarray:
    """The probability a fitted ``model`` gives to the true label of each row.

    A label the model never saw (absent from ``model.classes_``) gets probability 0.

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> model = DummyClassifier(strategy="prior").fit([[0], [0], [0], [0]], [0, 0, 0, 1])
    >>> true_label_proba(model, [[5], [5], [5]], [0, 1, 2]).tolist()
    [0.75, 0.25, 0.0]
    """
    proba = predict_proba(model, X, what="the oracle")
    y_true = np.asarray(y_true)
    if y_true.ndim != 1 or y_true.shape[0] != proba.shape[0]:
        raise InputError(
            f"y_true must hold one label per row of X: X has {proba.shape[0]} rows, "
            f"y_true has shape {y_true.shape}"
        )
    classes = np.asarray(model.classes_)
    column = np.searchsorted(classes, y_true)
    column = np.clip(column, 0, classes.shape[0] - 1)
    known = classes[column] == y_true
    out = np.zeros(proba.shape[0])
    out[known] = proba[np.flatnonzero(known), column[known]]
    return out


def informed_confidence(proba, p_true) -> np.ndarray:
    """``min(1 - max p, p_true)`` row by row: least confidence capped by an oracle.

    Parameters
    ----------
    proba : array-like of shape (n, k)
        The current model's class probabilities.
    p_true : array-like of shape (n,)
        The oracle's probability of each row's true label.

    Examples
    --------
    >>> informed_confidence([[0.4, 0.6], [0.9, 0.1], [0.5, 0.5]], [0.95, 0.9, 0.2]).tolist()
    [0.4, 0.1, 0.2]
    """
    uncertainty = get_score_function("least_confidence")(proba)
    p_true = np.asarray(p_true, dtype=float)
    if p_true.shape != uncertainty.shape:
        raise InputError(
            f"p_true must hold one probability per row of proba: {uncertainty.shape[0]} "
            f"rows, p_true has shape {p_true.shape}"
        )
    return np.minimum(uncertainty, p_true)


def fit_oracle(model, X, y, *, random_state=None):
    """A seeded clone of ``model`` fitted on ``(X, y)``: the oracle of the informed samplers.

    In the published protocol the oracle is the same kind of model as the learner, fitted on
    the whole test half.
    """
    X, y = check_labeled(X, y, model_input=True)
    return seed_estimator(clone(model), as_generator(random_state)).fit(X, y)


class InformedConfidenceSampler(ModelBasedMixin, BaseSampler):
    """Least confidence capped by an oracle's probability of the true label (simulation only).

    Parameters
    ----------
    classifier : estimator with ``predict_proba``
        The model being trained by active learning.
    batch_size : int, default=10
        How many rows to select.
    oracle : fitted estimator with ``predict_proba`` and ``classes_``
        A model fitted on held-out labeled data (see ``fit_oracle``).
    prefit : bool, default=False
        Use ``classifier`` as given instead of fitting a clone in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X_lab, y_lab = [[0.0], [1.0], [4.0], [5.0]], [0, 0, 1, 1]
    >>> oracle = LogisticRegression().fit([[0.0], [1], [2.4], [2.6], [4], [5]], [0, 0, 0, 1, 1, 1])
    >>> sampler = InformedConfidenceSampler(LogisticRegression(), 1, oracle=oracle)
    >>> pool, y_pool = [[0.5], [2.5], [4.5]], [0, 0, 1]
    >>> sampler.fit(X_lab, y_lab).select_samples(pool, y_pool)
    array([1])
    """

    #: The harness must pass the pool's true labels to ``select_samples``.
    requires_true_labels = True

    def __init__(self, classifier, batch_size: int = 10, *, oracle=None, prefit: bool = False):
        self.classifier = classifier
        self.batch_size = batch_size
        self.oracle = oracle
        self.prefit = prefit

    def fit(self, X=None, y=None):
        """Fit a clone of the classifier on the labeled data (or take it as is if prefit)."""
        if self.oracle is None:
            raise InputError(
                "InformedConfidenceSampler needs oracle=, a model fitted on held-out labeled "
                "data (see active_labeling.experiment.oracle.fit_oracle)"
            )
        self._check_classifier(self.oracle)
        self._check_prefit(self.oracle, "the oracle")
        return self._fit_classifier(X, y)

    def score_samples(self, X, y_true) -> np.ndarray:
        """``min(1 - max p_model, p_oracle(true label))`` for every row of the pool."""
        self._check_fitted("classifier_")
        X = self._validate_chunk(X, 0)
        return informed_confidence(self._predict_proba(X), true_label_proba(self.oracle, X, y_true))

    def select_with_scores(self, X, y_true) -> tuple[np.ndarray, np.ndarray]:
        """The ``batch_size`` best-scored rows, best first (ties: earlier row), and scores."""
        batch_size = check_batch_size(self.batch_size)
        scores = self.score_samples(X, y_true)
        effective_batch_size(batch_size, scores.shape[0], type(self).__name__)
        best = top_k(scores, batch_size)
        return best, scores[best]

    def select_samples(self, X, y_true) -> np.ndarray:
        """Positions in the pool ``X`` of the rows to label; ``y_true`` are their labels.

        Parameters
        ----------
        X : array-like of shape (n, d)
            The unlabeled pool.
        y_true : array-like of shape (n,)
            The true label of every pool row (known in a simulation only).
        """
        return self.select_with_scores(X, y_true)[0]


#: Simulation-only strategies by name, for the experiment harness. Each class has
#: ``requires_true_labels = True`` and an ``oracle`` parameter.
ORACLE_STRATEGIES: dict[str, type[BaseSampler]] = {
    "informed_confidence": InformedConfidenceSampler,
}
