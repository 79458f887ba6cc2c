"""BADGE: batch active learning by diverse gradient embeddings (Ash et al. 2020, "Deep
Batch Active Learning by Diverse, Uncertain Gradient Lower Bounds", ICLR).

The gradient of the cross-entropy loss with respect to the last layer's weights, taken at
the predicted label, is ``g = (p - e_yhat) ⊗ h`` where ``h`` is the last layer's input. Its
norm grows with uncertainty and its direction encodes the row; k-means++ seeding on these
embeddings picks rows that are both uncertain and diverse.

The embedding (k x d values per row) is never built: ``<a ⊗ h, a' ⊗ h'> = (a·a')(h·h')``,
so every distance comes from the two small factors. Memory is O(n (k + d)).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline

from active_labeling.samplers._validation import (
    check_features,
    check_model_input,
    effective_batch_size,
)
from active_labeling.samplers.base import BaseSampler, ModelBasedMixin

_ACTIVATIONS = {
    "identity": lambda z: z,
    "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
}


def last_layer_input(classifier, X):
    """What the classifier's last layer sees for each row of ``X``.

    - a ``Pipeline``: the output of every step but the last, then as below;
    - an ``MLPClassifier``: the activations of its last hidden layer;
    - a linear model (or any other): the features themselves. For a model without a last
      linear layer (trees, for instance) this is a stand-in, not the model's own embedding.
    """
    final = classifier
    H = X
    if isinstance(classifier, Pipeline):
        H = classifier[:-1].transform(X)
        final = classifier[-1]
    if not sp.issparse(H):
        H = check_features(H, "last-layer input")
    if isinstance(final, MLPClassifier):
        activation = _ACTIVATIONS[final.activation]
        for W, b in zip(final.coefs_[:-1], final.intercepts_[:-1], strict=True):
            H = activation(np.asarray(H @ W) + b)
    return H


def gradient_embedding_factors(proba: np.ndarray, H) -> tuple[np.ndarray, object]:
    """The factors ``(A, H)`` of the gradient embeddings ``g_i = A_i ⊗ H_i``.

    ``A = p - onehot(argmax p)``: the loss gradient with respect to the logits at the
    predicted label.

    Examples
    --------
    >>> A, _ = gradient_embedding_factors(np.array([[0.75, 0.25]]), np.ones((1, 3)))
    >>> A
    array([[-0.25,  0.25]])
    """
    A = np.array(proba, dtype=np.float64)
    A[np.arange(A.shape[0]), A.argmax(axis=1)] -= 1.0
    return A, H


def binary_gradient_embedding_factors(proba: np.ndarray, H, thresholds=None):
    """The factors ``(A, H)`` of the gradient embeddings of a multi-label model.

    With one sigmoid per class and the binary cross-entropy summed over the classes, the
    loss gradient with respect to class j's logit is ``p_j - yhat_j``, at the predicted
    label ``yhat_j = 1[p_j >= t_j]`` (``thresholds``, 0.5 by default): so ``A = p - yhat``.
    Each class has its own weights on the same last-layer input ``h``, so the gradient with
    respect to the last layer is again ``A ⊗ h``, and the BADGE machinery is unchanged. For a
    classifier chain, whose class j also reads the classes before it, ``h`` leaves those
    inputs out: an approximation.

    Examples
    --------
    >>> A, _ = binary_gradient_embedding_factors(np.array([[0.9, 0.3]]), np.ones((1, 2)))
    >>> A.round(2).tolist()
    [[-0.1, 0.3]]
    """
    A = np.array(proba, dtype=np.float64)
    t = np.full(A.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, float)
    A -= (A >= t).astype(np.float64)
    return A, H


def gradient_embedding(classifier, X, *, multilabel: bool, thresholds=None):
    """``(A, H)`` of ``classifier`` on the model input ``X``, single- or multi-label (the
    one path of :class:`BADGESampler` and of the engines' BADGE prefilter)."""
    from active_labeling.samplers.base import predict_binary_proba, predict_proba

    # The probabilities first: the model's refusal of a missing value names the pool's cell.
    if multilabel:
        proba = predict_binary_proba(classifier, X)
        return binary_gradient_embedding_factors(proba, last_layer_input(classifier, X), thresholds)
    proba = predict_proba(classifier, X)
    return gradient_embedding_factors(proba, last_layer_input(classifier, X))


def _row(H, i: int) -> np.ndarray:
    return H[i].toarray().ravel() if sp.issparse(H) else H[i]


def _squared_row_norms(H) -> np.ndarray:
    if sp.issparse(H):
        return np.asarray(H.multiply(H).sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", H, H)


def kmeans_pp_on_products(A, H, n_select: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on the rows ``A_i ⊗ H_i`` without building them.

    The first pick is the row of largest norm, as in the BADGE reference code; each next
    pick is drawn with probability proportional to its squared distance to the nearest pick.
    """
    g_norms = np.einsum("ij,ij->i", A, A) * _squared_row_norms(H)
    n = A.shape[0]
    chosen = np.empty(n_select, dtype=np.intp)
    picked = np.zeros(n, dtype=bool)
    d2 = np.full(n, np.inf)
    i = int(np.argmax(g_norms))
    for j in range(n_select):
        if j > 0:
            total = d2.sum()
            if total > 0 and np.isfinite(total):
                i = int(rng.choice(n, p=d2 / total))
            else:  # every remaining row coincides with a pick: any of them will do
                i = int(rng.choice(np.flatnonzero(~picked)))
        chosen[j] = i
        picked[i] = True
        inner = (A @ A[i]) * np.asarray(H @ _row(H, i)).ravel()
        dist = np.maximum(g_norms + g_norms[i] - 2.0 * inner, 0.0)
        np.minimum(d2, dist, out=d2)
        d2[picked] = 0.0
    return chosen


class BADGESampler(ModelBasedMixin, BaseSampler):
    """Select uncertain and diverse rows by k-means++ on gradient embeddings.

    Parameters
    ----------
    classifier : estimator with ``predict_proba``
        Best with a linear or logistic model or an ``MLPClassifier``, optionally at the end
        of a ``Pipeline``; other models use the features as the last-layer input.
    batch_size : int, default=10
        How many rows to select.
    thresholds : sequence of float, optional
        A multi-label classifier's per-class thresholds, which give the predicted labels
        the gradient is taken at (:func:`binary_gradient_embedding_factors`); None: 0.5.
        Unused with a single-label classifier (the predicted label is the most probable).
    prefit : bool, default=False
        Use ``classifier`` as given instead of fitting a clone in ``fit``.
    random_state : None, int or numpy Generator, default=None
        Seed of the k-means++ draws.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
    >>> sampler = BADGESampler(LogisticRegression(), batch_size=4, random_state=0).fit(X, y)
    >>> picked = sampler.select_samples(rng.normal(size=(100, 3)))
    >>> len(set(picked.tolist()))
    4
    """

    _labels = "any"

    def __init__(
        self,
        classifier,
        batch_size: int = 10,
        *,
        thresholds=None,
        prefit: bool = False,
        random_state=None,
    ):
        self.classifier = classifier
        self.batch_size = batch_size
        self.thresholds = thresholds
        self.prefit = prefit
        self.random_state = random_state

    def fit(self, X=None, y=None):
        """Fit a clone of the classifier on the labeled data (or take it as is if prefit);
        a multi-label classifier takes one row of 0/1 per item as ``y``."""
        return self._fit_classifier(X, y)

    def select_samples(self, X) -> np.ndarray:
        """Positions of ``batch_size`` rows picked by k-means++ on gradient embeddings."""
        self._validate_params()
        self._check_fitted("classifier_")
        self._check_stream_unsupported(X)
        X = check_model_input(X)
        n = X.shape[0]
        batch_size = effective_batch_size(self.batch_size, n, type(self).__name__)
        A, H = gradient_embedding(
            self.classifier_, X, multilabel=self.multilabel_, thresholds=self.thresholds
        )
        return kmeans_pp_on_products(A, H, batch_size, self._rng())
