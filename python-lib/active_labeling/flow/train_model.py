"""The train-model recipe's library side: labeled rows in, a new saved-model version out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from active_labeling.errors import InputError
from active_labeling.flow.feature_checks import check_no_infinity
from active_labeling.flow.labeled_data import labeled_frame
from active_labeling.flow.project import Project
from active_labeling.models import save_model, train_classifier
from active_labeling.store.connection import transaction
from active_labeling.store.consensus import ConsensusRule


class TrainModelParams(BaseModel):
    """Parameters of the train-model recipe (the one source of their defaults)."""

    model_config = ConfigDict(extra="forbid")

    classifier: Literal["logistic_regression", "random_forest", "hist_gradient_boosting"] = (
        "logistic_regression"
    )
    feature_columns: list[str] = Field(default_factory=list)
    text_columns: list[str] = Field(default_factory=list)
    cv_folds: int = Field(default=5, ge=2, le=20)
    random_state: int = 0
    #: Also score every label with the new version out of fold and mark the likely label
    #: errors for review (``flow.label_errors``; cv_folds more fits).
    find_label_errors: bool = False


def train_model(con, project: Project, *, dataset: str, model: str, params: TrainModelParams):
    """Fit the classifier on the current labels of ``dataset``; save it as a new version.

    Returns the ``SavedModel``.
    """
    if project.settings.multi_label:
        raise InputError(
            f"{project.config_path}: the project is multi-label (multi_label = true); "
            "train-model fits single-label classifiers only: export the labels "
            "(`active-labeling labels export`) to train a multi-label model elsewhere"
        )
    columns = params.feature_columns or project.feature_columns(dataset)
    # One snapshot: the labels read are exactly those up to the high-water mark recorded.
    with transaction(con):
        high_water = con.execute(
            "SELECT max(event_id) FROM label_events WHERE dataset = ?", [dataset]
        ).fetchone()[0]
        frame, labels = labeled_frame(con, dataset, columns, ConsensusRule.of(project.settings))
    check_no_infinity(frame, frame.index, dataset)
    if frame.empty:
        raise InputError(
            f"dataset {dataset!r} has no labeled item yet: import labels "
            "(`active-labeling labels import`) or label some in the app"
        )
    classes = project.settings.classes
    if classes:
        outside = sorted(set(labels) - set(classes))
        if outside:
            raise InputError(
                f"label {outside[0]!r} is not one of the project's classes ({', '.join(classes)})"
            )
    trained = train_classifier(
        frame,
        labels,
        feature_columns=columns,
        classifier=params.classifier,
        text_columns=params.text_columns or project.settings.text_columns,
        cv=params.cv_folds,
        random_state=params.random_state,
    )
    trained.meta = trained.meta.model_copy(update={"label_event_id": high_water})
    return save_model(project.models_dir, model, trained)
