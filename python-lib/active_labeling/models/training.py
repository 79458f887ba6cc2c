"""Train a classifier on labeled rows and describe it: cross-validated scores and metadata.

The fitted model is a scikit-learn ``Pipeline`` (the preprocessor of
:mod:`active_labeling.models.features`, then a classifier), and :class:`ModelMeta` is
what a saved model's ``meta.json`` holds. Nothing here touches the disk.
"""

from __future__ import annotations

import importlib.metadata
import numbers
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np
import pandas as pd
import sklearn
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sklearn.base import ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

import active_labeling
from active_labeling.errors import InputError
from active_labeling.models.features import build_preprocessor, infer_column_kinds

Progress = Callable[[int, int, str], None]

# A model's name and version become directory names: nothing that could leave models_dir.
NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
VERSION_PATTERN = r"^[1-9][0-9]*$"


@dataclass(frozen=True)
class ClassifierFactory:
    """How to build one classifier, and what input it needs.

    Calling the factory with a seed returns a new unfitted classifier.
    """

    build: Callable[[int], ClassifierMixin]
    dense_input: bool = False
    max_text_features: int | None = None

    def __call__(self, random_state: int) -> ClassifierMixin:
        return self.build(random_state)


CLASSIFIERS: dict[str, ClassifierFactory] = {
    "logistic_regression": ClassifierFactory(lambda seed: LogisticRegression(max_iter=1000)),
    "random_forest": ClassifierFactory(
        lambda seed: RandomForestClassifier(n_estimators=200, random_state=seed)
    ),
    # HistGradientBoosting takes no sparse input: the one-hot and TF-IDF columns are made
    # dense, and each text column keeps its 500 most frequent words so that the dense
    # matrix stays within memory (rows x words x 8 bytes).
    "hist_gradient_boosting": ClassifierFactory(
        lambda seed: HistGradientBoostingClassifier(random_state=seed),
        dense_input=True,
        max_text_features=500,
    ),
}
"""Classifier name to factory; ``"logistic_regression"`` is the default."""


class FoldScores(BaseModel):
    """One metric over the cross-validation folds."""

    model_config = ConfigDict(extra="forbid")

    mean: float
    std: float
    folds: list[float] = Field(min_length=1)


class CVScores(BaseModel):
    """Cross-validated scores: accuracy and macro-averaged F1 of a single-label model; micro-
    and macro-averaged F1, Hamming loss and subset accuracy of a multi-label one (each fold
    predicted with thresholds chosen on the others)."""

    model_config = ConfigDict(extra="forbid")

    accuracy: FoldScores | None = None
    f1_macro: FoldScores
    f1_micro: FoldScores | None = None
    hamming_loss: FoldScores | None = None
    subset_accuracy: FoldScores | None = None

    @property
    def multi_label(self) -> bool:
        return self.accuracy is None

    @model_validator(mode="after")
    def _one_kind(self) -> CVScores:
        multi = [self.f1_micro, self.hamming_loss, self.subset_accuracy]
        if self.accuracy is None and any(score is None for score in multi):
            raise ValueError(
                "give accuracy (single-label) or f1_micro, hamming_loss and subset_accuracy "
                "(multi-label)"
            )
        if self.accuracy is not None and any(score is not None for score in multi):
            raise ValueError("accuracy is for single-label models, the others for multi-label")
        return self


class ModelMeta(BaseModel):
    """What a saved model is: its ``meta.json``.

    ``name`` and ``version`` are None until the model is saved. Labels are strings in this
    project, so ``classes`` are strings, in the order of the columns of ``predict_proba``.
    A multi-label model (``multi_label``) gives one independent probability per class (the
    columns follow ``classes``) and predicts the classes whose probability reaches their
    ``thresholds``.
    """

    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(default=None, pattern=VERSION_PATTERN)
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    trained_at: AwareDatetime
    classes: list[str] = Field(min_length=1)
    #: Several classes per item (``models.multilabel``); False for older models.
    multi_label: bool = False
    #: How the classes are modelled: ``one_vs_rest`` or ``classifier_chain`` (multi-label).
    multi_label_method: Literal["one_vs_rest", "classifier_chain"] | None = None
    #: Per-class decision thresholds, chosen by cross-validation (multi-label).
    thresholds: dict[str, float] | None = None
    #: Training items holding each class (multi-label).
    class_counts: dict[str, int] | None = None
    feature_columns: list[str] = Field(min_length=1)
    feature_kinds: dict[str, Literal["numeric", "categorical", "text"]]
    feature_dtypes: dict[str, str]
    classifier: str
    params: dict[str, Any]
    training_rows: int = Field(ge=1)
    #: The largest label event id when the training labels were read (set by the
    #: train-model recipe; None when trained outside a project): the labels a version was
    #: trained on are the store's current labels as of that event.
    label_event_id: int | None = None
    cv_scores: CVScores | None
    cv_note: str | None = None
    library_versions: dict[str, str]

    def scores_summary(self) -> str:
        """The cross-validated scores in words, for the train-model recipe's report."""
        scores = self.cv_scores
        if scores is None:
            return f"no cross-validation ({self.cv_note})"
        if scores.multi_label:
            return (
                f"cross-validated micro F1 {scores.f1_micro.mean:.3f} ± {scores.f1_micro.std:.3f}, "
                f"macro F1 {scores.f1_macro.mean:.3f}, Hamming loss "
                f"{scores.hamming_loss.mean:.3f}, subset accuracy "
                f"{scores.subset_accuracy.mean:.3f}; thresholds "
                + ", ".join(f"{c} {t:.2f}" for c, t in (self.thresholds or {}).items())
            )
        return (
            f"cross-validated accuracy {scores.accuracy.mean:.3f} ± {scores.accuracy.std:.3f}, "
            f"macro F1 {scores.f1_macro.mean:.3f}"
        )

    @model_validator(mode="after")
    def _columns_agree(self) -> ModelMeta:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes: a class is listed twice")
        if not self.multi_label and len(self.classes) < 2:
            raise ValueError("classes: a single-label model needs at least 2 classes")
        if self.multi_label:
            if self.thresholds is None or list(self.thresholds) != self.classes:
                raise ValueError("thresholds: a multi-label model needs one per class, in order")
        elif self.thresholds is not None or self.multi_label_method is not None:
            raise ValueError("thresholds and multi_label_method are for multi-label models")
        if self.cv_scores is not None and self.cv_scores.multi_label != self.multi_label:
            raise ValueError("cv_scores: the scores of another kind of model")
        for field in ("feature_kinds", "feature_dtypes"):
            if list(getattr(self, field)) != self.feature_columns:
                raise ValueError(f"{field}: its keys must be the feature_columns, in order")
        return self


@dataclass
class TrainedModel:
    """A fitted pipeline (preprocessor, then classifier) and its metadata, not yet saved."""

    pipeline: Pipeline
    meta: ModelMeta


def train_classifier(
    frame: pd.DataFrame,
    labels: Sequence | np.ndarray | pd.Series,
    *,
    feature_columns: Sequence[str],
    classifier: str = "logistic_regression",
    text_columns: Sequence[str] = (),
    categorical_columns: Sequence[str] = (),
    cv: int | None = 5,
    random_state: int = 0,
    progress: Progress | None = None,
) -> TrainedModel:
    """Fit a preprocessing + classifier pipeline on labeled rows, with cross-validated scores.

    Column kinds come from :func:`~active_labeling.models.features.infer_column_kinds`.
    Scores are accuracy and macro F1 over stratified folds (shuffled with
    ``random_state``); there are ``min(cv, smallest class count)`` folds, and none when a
    class has a single label: ``meta.cv_scores`` is then None and ``meta.cv_note`` says
    why. The returned pipeline is fitted on all the rows.

    Parameters
    ----------
    frame : DataFrame
        The labeled rows; columns other than ``feature_columns`` are ignored.
    labels : sequence
        One label per row of ``frame``, by position. Labels are stored as strings.
    feature_columns : sequence of str
        The columns the model reads.
    classifier : str
        A name of :data:`CLASSIFIERS`.
    text_columns, categorical_columns : sequence of str
        Columns whose kind is given rather than inferred.
    cv : int or None
        Number of cross-validation folds (at least 2), or None for no cross-validation.
    random_state : int
        Seed of the fold shuffling and of the classifier.
    progress : callable or None
        Called as ``progress(done, total, stage)`` after each fold and after the final fit,
        for a progress bar.

    Returns
    -------
    TrainedModel

    Raises
    ------
    InputError
        Empty data, a label count different from the row count, a missing label (the
        message names the row), fewer than 2 classes (it gives the labels per class), an
        unknown classifier, a bad ``cv``, or a feature column that cannot be used.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 10.0, 11.0, 12.0],
    ...                       "country": ["FR", "FR", "DE", "DE", "US", "US"]})
    >>> labels = ["small", "small", "small", "large", "large", "large"]
    >>> trained = train_classifier(frame, labels, feature_columns=["amount", "country"], cv=3)
    >>> trained.meta.classes, trained.meta.feature_kinds["country"]
    (['large', 'small'], 'categorical')
    >>> len(trained.meta.cv_scores.accuracy.folds)
    3
    >>> trained.pipeline.predict(pd.DataFrame({"amount": [11.5], "country": ["FR"]}))
    array(['large'], dtype=object)
    """
    factory = _classifier_factory(classifier)
    _check_cv(cv)
    if len(frame) == 0:
        raise InputError("the training data has no row: label some items first")
    y = _string_labels(labels, frame)
    counts = pd.Series(y).value_counts()
    if len(counts) < 2:
        raise InputError(
            f"training needs at least 2 classes, got {len(counts)}: {_per_class(counts)}; "
            "label items of another class first"
        )
    kinds = infer_column_kinds(
        frame,
        feature_columns,
        text_columns=text_columns,
        categorical_columns=categorical_columns,
    )
    X = frame[list(kinds)]
    pipeline = Pipeline(
        [
            (
                "preprocess",
                build_preprocessor(
                    kinds,
                    dense=factory.dense_input,
                    max_text_features=factory.max_text_features,
                ),
            ),
            ("classifier", factory(random_state)),
        ]
    )

    n_splits, cv_note = _fold_count(cv, counts)
    total = n_splits + 1
    cv_scores = None
    if n_splits:
        cv_scores = _cross_validate(pipeline, X, y, n_splits, random_state, progress, total)
    pipeline.fit(X, y)
    if progress is not None:
        progress(total, total, "fit")

    meta = ModelMeta(
        trained_at=datetime.now(timezone.utc),
        classes=[str(c) for c in pipeline.classes_],
        feature_columns=list(kinds),
        feature_kinds=kinds,
        feature_dtypes={column: str(X[column].dtype) for column in kinds},
        classifier=classifier,
        params=_json_params(pipeline.named_steps["classifier"]),
        training_rows=len(X),
        cv_scores=cv_scores,
        cv_note=cv_note,
        library_versions=_library_versions(),
    )
    return TrainedModel(pipeline=pipeline, meta=meta)


def _classifier_factory(classifier: str) -> ClassifierFactory:
    try:
        return CLASSIFIERS[classifier]
    except (KeyError, TypeError):
        raise InputError(
            f"classifier {classifier!r} is unknown; choose one of {', '.join(CLASSIFIERS)}"
        ) from None


def _check_cv(cv) -> None:
    if cv is None:
        return
    if isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 2:
        raise InputError(f"cv must be an int of at least 2 folds, or None, got {cv!r}")


def _string_labels(labels, frame: pd.DataFrame) -> np.ndarray:
    values = list(labels)
    if len(values) != len(frame):
        raise InputError(
            f"labels: {len(values)} labels for {len(frame)} rows; give one label per row"
        )
    as_objects = np.array(values, dtype=object)
    # pd.isna covers None, NaN, NaT and pd.NA alike; an empty string is no label either.
    missing = pd.isna(as_objects) | np.array([str(v).strip() == "" for v in values], dtype=bool)
    if missing.any():
        position = int(np.flatnonzero(missing)[0])
        raise InputError(
            f"labels: row {position} (index {frame.index[position]!r}) has no label "
            f"({values[position]!r}); drop unlabeled rows before training"
        )
    # Labels are strings in this project: 1 and "1" are the same class.
    return np.array([str(value) for value in values], dtype=object)


def _per_class(counts: pd.Series) -> str:
    return ", ".join(f"{label!r}: {count}" for label, count in counts.items()) or "no label"


def _fold_count(cv: int | None, counts: pd.Series) -> tuple[int, str | None]:
    if cv is None:
        return 0, "cross-validation turned off (cv=None)"
    smallest_class, smallest = counts.idxmin(), int(counts.min())
    if smallest < 2:
        return 0, (
            f"no cross-validation: class {smallest_class!r} has a single label, and "
            "stratified folds need at least 2 per class"
        )
    if smallest < cv:
        return smallest, (
            f"{smallest} folds instead of {cv}: class {smallest_class!r} has only {smallest} labels"
        )
    return cv, None


def _cross_validate(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    n_splits: int,
    random_state: int,
    progress: Progress | None,
    total: int,
) -> CVScores:
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    accuracy, f1_macro = [], []
    for done, (train, test) in enumerate(folds.split(X, y), start=1):
        model = clone(pipeline).fit(X.iloc[train], y[train])
        predicted = model.predict(X.iloc[test])
        accuracy.append(float(accuracy_score(y[test], predicted)))
        # zero_division=0 is the value the "f1_macro" scorer gives too, without a warning
        # for a class never predicted in a small fold.
        f1_macro.append(float(f1_score(y[test], predicted, average="macro", zero_division=0)))
        if progress is not None:
            progress(done, total, f"cross-validation fold {done}/{n_splits}")
    return CVScores(accuracy=_fold_scores(accuracy), f1_macro=_fold_scores(f1_macro))


def _fold_scores(folds: list[float]) -> FoldScores:
    return FoldScores(mean=float(np.mean(folds)), std=float(np.std(folds)), folds=folds)


def _json_params(estimator) -> dict[str, Any]:
    # get_params may hold numpy scalars or objects; meta.json keeps JSON values and the
    # repr of anything else.
    params = {}
    for key, value in estimator.get_params(deep=False).items():
        if isinstance(value, np.generic):
            value = value.item()
        if not (value is None or isinstance(value, str | bool | int | float)):
            value = repr(value)
        params[key] = value
    return params


def _library_versions() -> dict[str, str]:
    try:
        skops_version = importlib.metadata.version("skops")
    except importlib.metadata.PackageNotFoundError:
        skops_version = "not installed"
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "skops": skops_version,
        "active_labeling": active_labeling.__version__,
    }
