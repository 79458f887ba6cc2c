"""What every sampler shares: the scikit-learn contract, streamed top-k, the model seam.

A sampler's constructor only stores its parameters; ``fit(X, y)`` sees the labeled data and
returns ``self``; ``select_samples(X)`` returns positions in the pool ``X``, best first.
Scored samplers also expose ``score_samples(X)`` and accept a pool streamed as chunks, with
memory bounded by one chunk plus the batch. Nothing here knows about datasets or stores.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn import get_config as sklearn_config
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import Pipeline

from active_labeling.errors import InputError, NotFittedError
from active_labeling.samplers._validation import (
    as_generator,
    check_bool,
    check_feature_names,
    check_features,
    check_int,
    check_model_input,
    check_random_state,
    effective_batch_size,
    explain_model_error,
    feature_names,
    is_chunk_stream,
    n_rows,
    plain,
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

    #: Integer parameters and the smallest value each accepts, checked by _validate_params.
    _int_params: ClassVar[dict[str, int]] = {"batch_size": 1}

    def fit(self, X=None, y=None):
        """Learn what the sampler needs from the labeled data; returns ``self``."""
        self._validate_params()
        return self

    def _validate_params(self) -> None:
        """Check the parameters where the work starts (``fit``, ``select_samples``,
        ``score_samples``): the constructor only stores them, and ``set_params`` may change
        them between two calls."""
        owner = type(self).__name__
        for name, minimum in self._int_params.items():
            check_int(getattr(self, name), name, owner, minimum=minimum)
        if "random_state" in self._get_param_names():
            check_random_state(self.random_state, owner)

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

    def _record_feature_names(self, X) -> None:
        """Keep the column names of the labeled X (``feature_names_in_``), if it has any."""
        names = feature_names(X)
        if names is None:
            self.__dict__.pop("feature_names_in_", None)  # a refit on an array forgets them
        else:
            self.feature_names_in_ = names

    def _check_feature_names(self, X) -> None:
        """Refuse a pool whose columns differ, by name or order, from the labeled X's."""
        check_feature_names(X, getattr(self, "feature_names_in_", None), type(self).__name__)

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

    def add(self, scores: np.ndarray, rows_of=None) -> None:
        """Merge a chunk's scores; ``rows_of(positions)`` gives the features of its rows."""
        n = scores.shape[0]
        local = top_k(scores, self.k)
        index = np.concatenate([self.index, self.n_seen + local])
        merged_scores = np.concatenate([self.scores, scores[local]])
        # The first chunk's top is already the top: no merge to rank.
        best = (
            np.arange(local.shape[0]) if self.n_seen == 0 else top_k(merged_scores, self.k, index)
        )
        if self.keep_rows:
            new_rows = rows_of(local)
            stacked = new_rows if self.rows is None else np.vstack([self.rows, new_rows])
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

    def _score_chunk(self, X, rng, row_offset: int = 0) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _prepare(self) -> None:
        """Hook run before scoring (for example, the fitted check)."""

    def _rows_getter(self, chunk, offset: int):
        """A function giving the features of some rows of ``chunk``, for ``StreamedTopK``."""
        return lambda rows: self._features(take_rows(chunk, rows), offset)

    def _features(self, X, row_offset: int = 0) -> np.ndarray:
        """The numeric features that samplers keeping rows measure distances on."""
        return check_features(X, row_offset=row_offset)

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
        self._validate_params()
        self._check_stream_unsupported(X)
        self._prepare()
        return self._score_chunk(self._validate_chunk(X, 0), self._rng(), 0)

    def _stream(self, X, k: int, keep_rows: bool = False) -> StreamedTopK:
        """Score the pool (a matrix or a stream of chunks) keeping the top ``k``."""
        self._prepare()
        # Only samplers that draw randomness pay for a generator.
        rng = self._rng() if hasattr(self, "random_state") else None
        chunks: Iterable = X if is_chunk_stream(X) else (X,)
        best = StreamedTopK(k, keep_rows=keep_rows)
        for chunk in chunks:
            if n_rows(chunk) == 0:
                continue
            offset = best.n_seen
            chunk = self._validate_chunk(chunk, offset)
            scores = self._score_chunk(chunk, rng, offset)
            best.add(scores, self._rows_getter(chunk, offset) if keep_rows else None)
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
        self._validate_params()
        batch_size = int(self.batch_size)
        best = self._stream(X, batch_size)
        effective_batch_size(batch_size, best.n_seen, type(self).__name__)
        return best.index, best.scores


#: Strategies for multi-label models, and the message naming them.
MULTI_LABEL_HINT = "mean_binary_uncertainty, max_binary_uncertainty, mmc, label_cardinality"


class ModelBasedMixin:
    """The seam to a classifier: anything with ``predict_proba``.

    With ``prefit=True`` the classifier is used as given (and ``clone`` keeps it, fitted);
    otherwise ``fit`` fits a clone on the labeled data, leaving the caller's object untouched.

    A multi-label classifier (:func:`is_multilabel_model`: one-vs-rest or a chain on an
    indicator matrix, a forest or an MLP fitted on one) gives independent binary
    probabilities; ``_labels`` says which kind a sampler scores: ``"single"`` (class
    probabilities), ``"multi"`` or ``"any"``, and ``fit`` refuses the other kind.
    """

    _labels: ClassVar[str] = "single"

    def __sklearn_clone__(self):
        if getattr(self, "prefit", False):
            # A clone of a prefit sampler shares the fitted model: cloning the model would
            # hand over an unfitted copy that fails at selection time.
            return type(self)(**self.get_params(deep=False))
        return super().__sklearn_clone__()

    def _check_classifier(self, classifier) -> None:
        if not hasattr(classifier, "predict_proba"):
            raise InputError(
                f"{type(self).__name__}: classifier must have predict_proba, "
                f"got {type(classifier).__name__}"
            )

    def _check_prefit(self, classifier, what: str = "the classifier") -> None:
        if not hasattr(classifier, "classes_"):
            raise NotFittedError(
                f"{type(self).__name__}: prefit=True but {what} is not fitted (it has no "
                "classes_); fit it first, or pass prefit=False"
            )

    def _fit_model(self, model, X, y):
        """Fit ``model`` (a clone) on validated labeled data, with errors a user can act on."""
        classes = np.unique(y)
        if y.ndim == 2:  # an indicator matrix: each class is its own binary problem
            pass
        elif classes.shape[0] < 2:
            raise InputError(
                f"{type(self).__name__}: the labeled set holds a single class "
                f"({plain(classes[0])!r} x {len(y)}); a model needs at least 2 classes: label "
                "more, or start with a model-free strategy (random, kmeans, kcenter, typiclust)"
                if classes.shape[0]
                else f"{type(self).__name__}: the labeled set is empty"
            )
        try:
            return model.fit(X, y)
        except (TypeError, ValueError):  # TypeError: a pd.NA that float() refuses
            explain_model_error(X, "labeled X")
            raise

    def _validate_params(self) -> None:
        super()._validate_params()
        check_bool(self.prefit, "prefit", type(self).__name__)

    def _fit_classifier(self, X, y):
        self._validate_params()
        self._check_classifier(self.classifier)
        if self.prefit:
            self._check_prefit(self.classifier)
            self.classifier_ = self.classifier
        else:
            X, y = check_labeled(X, y, model_input=True, multilabel=self._labels != "single")
            self.classifier_ = self._fit_model(clone(self.classifier), X, y)
        self.multilabel_ = is_multilabel_model(self.classifier_)
        self._check_label_kind()
        return self

    def _check_label_kind(self) -> None:
        """Refuse a classifier of the kind (single- or multi-label) this sampler does not
        score, naming the strategies that do."""
        owner = type(self).__name__
        model = type(final_estimator(self.classifier_)).__name__
        if self._labels == "single" and self.multilabel_:
            raise InputError(
                f"{owner}: the classifier ({model}) is multi-label and {owner} scores the "
                f"class probabilities of a single-label model; use a multi-label strategy "
                f"({MULTI_LABEL_HINT})"
            )
        if self._labels == "multi" and not self.multilabel_:
            raise InputError(
                f"{owner}: the classifier ({model}) is single-label and {owner} scores the "
                "independent class probabilities of a multi-label model; use least_confidence, "
                "margin or entropy"
            )

    def _model_checks_finite(self) -> bool:
        """Whether every model this sampler calls refuses NaN and infinity by itself."""
        models = getattr(self, "members_", None) or [getattr(self, "classifier_", None)]
        return all(refuses_non_finite(model) for model in models)

    def _validate_chunk(self, X, row_offset: int):
        return check_model_input(
            X, row_offset=row_offset, model_checks_finite=self._model_checks_finite()
        )

    def _predict_proba(self, X, row_offset: int = 0) -> np.ndarray:
        self._check_fitted("classifier_")
        if getattr(self, "multilabel_", False):
            return predict_binary_proba(self.classifier_, X, row_offset)
        return predict_proba(self.classifier_, X, row_offset)

    def _features(self, X, row_offset: int = 0) -> np.ndarray:
        """Features in the model's input space: after a Pipeline's preprocessing steps."""
        model = getattr(self, "classifier_", None)
        if isinstance(model, Pipeline) and len(model) > 1:
            return preprocessed(model, X)
        return check_features(X, row_offset=row_offset)


def preprocessed(pipeline: Pipeline, X, dtype=None) -> np.ndarray:
    """``X`` through every step of ``pipeline`` but the last, as a dense array (the model's
    feature space, where distance strategies and metrics measure)."""
    transformed = pipeline[:-1].transform(X)
    dense = transformed.toarray() if sp.issparse(transformed) else transformed
    return np.asarray(dense, dtype=dtype)


def refuses_non_finite(model) -> bool:
    """Whether ``model`` checks its input for NaN and infinity and refuses them.

    True for scikit-learn estimators whose tags say ``allow_nan=False`` while scikit-learn
    checks inputs (``assume_finite`` off). Anything else may let a NaN through, so the
    sampler checks the pool itself.
    """
    # A pipeline's own tags do not tell whether its first step takes NaN: ask that step.
    while isinstance(model, Pipeline):
        steps = [step for _, step in model.steps if step not in (None, "passthrough")]
        if not steps:
            return False
        model = steps[0]
    if not isinstance(model, BaseEstimator) or sklearn_config()["assume_finite"]:
        return False
    try:
        from sklearn.utils import get_tags  # scikit-learn >= 1.6

        return not get_tags(model).input_tags.allow_nan
    except ImportError:  # pragma: no cover - older scikit-learn
        try:
            return not model._get_tags()["allow_nan"]
        except Exception:
            return False
    except Exception:  # pragma: no cover - a third-party estimator with odd tags
        return False


#: Probabilities are rounded to multiples of 2**-PROBA_GRID_BITS (about 2.3e-10).
PROBA_GRID_BITS = 32


def snap_proba(proba: np.ndarray) -> np.ndarray:
    """``proba`` rounded to a grid of 2**-32, so a row's probabilities do not depend on the
    rows scored with it.

    A model's arithmetic is not batch invariant: BLAS picks its kernels by the shape of the
    batch, so the same row scored in a batch of 7 rows or of 64 may differ in the last bit
    (OpenBLAS sums the last ``m % 4`` rows of a column-major matrix-vector product
    differently, and since pandas 3 a pipeline's preprocessing hands the classifier
    column-major matrices). That noise breaks ties between equal rows, so the ranking would
    depend on where chunks and partitions start. Rounding to a grid far coarser than the
    noise (1e-16) and far finer than any difference worth ranking on removes it, but for a
    value within the noise of a grid point, about one in a million. Scaling by a power of
    two and rounding are exact.

    Examples
    --------
    >>> p = np.array([[0.3, 0.7]])
    >>> bool(np.array_equal(snap_proba(p + 1e-16), snap_proba(p)))
    True
    """
    scale = float(2**PROBA_GRID_BITS)
    return np.rint(proba * scale) / scale


def predict_proba(model, X, row_offset: int = 0, what: str = "the classifier") -> np.ndarray:
    """``model.predict_proba(X)``, validated and snapped to a grid (see :func:`snap_proba`);
    a refusal over missing values names the cell."""
    try:
        proba = model.predict_proba(X)
    except (TypeError, ValueError):  # TypeError: a pd.NA that float() refuses
        explain_model_error(X, row_offset=row_offset)
        raise
    return snap_proba(check_proba(proba, f"{what}'s predict_proba"))


def final_estimator(model):
    """The last step of a pipeline (of pipelines), else the model itself."""
    while isinstance(model, Pipeline) and len(model):
        model = model[-1]
    return model


def is_multilabel_model(model) -> bool:
    """Whether a fitted ``model`` predicts independent probabilities per class.

    True for ``ClassifierChain`` and ``MultiOutputClassifier``, for ``OneVsRestClassifier``
    fitted on an indicator matrix (``multilabel_``), for an ``MLPClassifier`` with logistic
    outputs over several classes, and for estimators fitted on several outputs (forests,
    trees, k-NN), at the end of a pipeline or alone.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> X, Y = np.array([[0.0], [1], [2], [3]]), np.array([[0, 1], [0, 1], [1, 0], [1, 1]])
    >>> is_multilabel_model(OneVsRestClassifier(LogisticRegression()).fit(X, Y))
    True
    >>> is_multilabel_model(OneVsRestClassifier(LogisticRegression()).fit(X, Y[:, 0]))
    False
    """
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.multioutput import ClassifierChain, MultiOutputClassifier
    from sklearn.neural_network import MLPClassifier

    model = final_estimator(model)
    if isinstance(model, ClassifierChain | MultiOutputClassifier):
        return True
    if isinstance(model, OneVsRestClassifier):
        return bool(getattr(model, "multilabel_", False))
    if isinstance(model, MLPClassifier):
        return getattr(model, "out_activation_", None) == "logistic" and (
            getattr(model, "n_outputs_", 1) > 1
        )
    n_outputs = getattr(model, "n_outputs_", 1)
    return bool(getattr(model, "outputs_2d_", False)) or (
        isinstance(n_outputs, int | np.integer) and n_outputs > 1
    )


def predict_binary_proba(model, X, row_offset: int = 0, what: str = "the classifier") -> np.ndarray:
    """The (n, k) independent class probabilities of a multi-label ``model``, validated and
    snapped to the grid of :func:`snap_proba`.

    Estimators fitted on several outputs return one (n, 2) array per class: the
    probability of 1 is taken from each (a class seen with one value only gives that
    value's probability, 1 or 0).
    """
    try:
        proba = model.predict_proba(X)
    except (TypeError, ValueError):
        explain_model_error(X, row_offset=row_offset)
        raise
    if isinstance(proba, list):
        classes = getattr(final_estimator(model), "classes_", None)
        proba = np.column_stack(
            [_probability_of_one(p, c) for p, c in zip(proba, classes, strict=True)]
        )
    from active_labeling.samplers.multilabel_scores import check_binary_proba

    return snap_proba(check_binary_proba(proba, f"{what}'s predict_proba"))


def _probability_of_one(proba: np.ndarray, classes) -> np.ndarray:
    classes = np.asarray(classes)
    hit = np.flatnonzero(classes == 1)
    return proba[:, hit[0]] if hit.size else np.zeros(proba.shape[0])


def labeled_features(sampler, X) -> np.ndarray:
    """The labeled points a diversity sampler records in ``fit`` (none if ``X`` is None)."""
    if X is None:
        return np.empty((0, 0))
    if hasattr(sampler, "classifier_"):
        return sampler._features(check_model_input(X, "labeled X"))
    return check_features(X, "labeled X", allow_empty=True)


class LabeledSetSampler(BaseSampler):
    """A sampler that needs the whole pool and the labeled points recorded by ``fit``."""

    def fit(self, X=None, y=None):
        """Record the labeled points (none if ``X`` is None).

        A DataFrame's column names are kept in ``feature_names_in_``: a pool DataFrame whose
        columns differ from them, by name or by order, is then refused.

        Parameters
        ----------
        X : array-like of shape (n_labeled, d), optional
        y : ignored
        """
        self._validate_params()
        self.labeled_ = labeled_features(self, X)
        self._record_feature_names(X)
        return self

    def _pool_and_labeled(self, X) -> tuple[np.ndarray, np.ndarray, int]:
        """The validated pool, the labeled points, and the batch size for this pool."""
        self._validate_params()
        self._check_fitted("labeled_")
        self._check_stream_unsupported(X)
        self._check_feature_names(X)
        X = check_features(X)
        batch_size = effective_batch_size(self.batch_size, X.shape[0], type(self).__name__)
        check_same_features(X, self.labeled_)
        return X, self.labeled_, batch_size


def check_same_features(pool: np.ndarray, labeled: np.ndarray) -> None:
    if labeled.size and labeled.shape[1] != pool.shape[1]:
        raise InputError(
            f"pool X has {pool.shape[1]} features but the labeled X had {labeled.shape[1]}"
        )


def check_labeled(X, y, *, model_input: bool = False, multilabel: bool = False):
    """Validate the labeled set given to ``fit``: features and one label per row (with
    ``multilabel``, a 0/1 row per item may stand for its label set)."""
    if X is None or y is None:
        raise InputError("fit needs the labeled features X and their labels y")
    X = check_model_input(X, "labeled X") if model_input else check_features(X, "labeled X")
    y = np.asarray(y)
    if multilabel and y.ndim == 2:
        return X, check_label_sets(y, n_rows(X))
    if y.ndim != 1 or y.shape[0] != n_rows(X):
        raise InputError(
            f"labeled y must hold one label per row of X: X has {n_rows(X)} rows, "
            f"y has shape {y.shape}"
        )
    return X, y


def check_label_sets(Y, n: int | None = None) -> np.ndarray:
    """The labeled set of a multi-label sampler: an (n, k) indicator matrix of 0/1."""
    Y = np.asarray(Y)
    if Y.ndim != 2 or (n is not None and Y.shape[0] != n):
        expected = f"{n} rows" if n is not None else "one row per item"
        raise InputError(
            f"labeled y must be an indicator matrix of label sets ({expected}, one column per "
            f"class), got shape {Y.shape}"
        )
    if not np.isin(Y, (0, 1)).all():
        row = int(np.flatnonzero(~np.isin(Y, (0, 1)).all(axis=1))[0])
        raise InputError(f"labeled y row {row} holds a value other than 0 and 1")
    return Y.astype(np.int64)


def take_rows(X, rows: Sequence[int] | np.ndarray):
    """Rows of an array or a DataFrame, by position."""
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]
