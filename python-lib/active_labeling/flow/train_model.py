"""The train-model recipe's library side: labeled rows in, a new saved-model version out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from active_labeling.errors import InputError
from active_labeling.flow.feature_checks import check_no_infinity
from active_labeling.flow.labeled_data import labeled_frame
from active_labeling.flow.project import Project
from active_labeling.models import save_model, train_classifier
from active_labeling.models.multilabel import train_multilabel_classifier
from active_labeling.store.connection import transaction
from active_labeling.store.consensus import ConsensusRule
from active_labeling.store.label_sets import label_set_matrix


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
    #: Multi-label projects: one binary model per class, or a classifier chain.
    multi_label_method: Literal["one_vs_rest", "classifier_chain"] = "one_vs_rest"
    #: Also score every label with the new version out of fold and mark the likely label
    #: errors for review (``flow.label_errors``; cv_folds more fits).
    find_label_errors: bool = False


def train_model(con, project: Project, *, dataset: str, model: str, params: TrainModelParams):
    """Fit the classifier on the current labels of ``dataset``; save it as a new version.

    A multi-label project gets a multi-label model (``models.multilabel``): its label sets
    are checked against the project's classes (and ``allow_empty``) first, naming the item.
    Returns the ``SavedModel``; on a spans project, a ``models.spans.SpansModel`` (a CRF).
    """
    task = project.task_of(dataset)
    if params.find_label_errors:  # refused before a model is fitted for nothing
        from active_labeling.flow.label_errors import check_scorable

        check_scorable(project, dataset)
    if task == "spans":
        from active_labeling.flow.spans_training import train_spans

        return train_spans(con, project, dataset=dataset, model=model, params=params)
    if task == "boxes":
        raise InputError(
            f"dataset {dataset!r} is labeled with boxes: train-model fits classifiers and spans "
            "models; train a detector on an export (`labels export --format coco` or yolo) and "
            "rank with strategy precomputed"
        )
    settings = project.settings
    if not settings.multi_label and params.multi_label_method != "one_vs_rest":
        raise InputError(
            f"multi_label_method {params.multi_label_method!r} is for multi-label projects, "
            f"and {project.config_path} has multi_label = false"
        )
    columns = params.feature_columns or project.feature_columns(dataset)
    # One snapshot: the labels read are exactly those up to the high-water mark recorded.
    with transaction(con):
        high_water = con.execute(
            "SELECT max(event_id) FROM label_events WHERE dataset = ?", [dataset]
        ).fetchone()[0]
        frame, labels = labeled_frame(
            con, dataset, columns, ConsensusRule.for_dataset(project, dataset)
        )
    check_no_infinity(frame, frame.index, dataset)
    if frame.empty:
        raise InputError(
            f"dataset {dataset!r} has no labeled item yet: import labels "
            "(`active-labeling labels import`) or label some in the app"
        )
    classes = settings.classes
    if settings.multi_label:
        trained = train_multilabel_classifier(
            frame,
            label_set_matrix(
                labels.to_numpy(),
                classes,
                allow_empty=settings.allow_empty,
                where=lambda i: f"dataset {dataset!r}, item {labels.index[i]!r}",
            ),
            classes=classes,
            feature_columns=columns,
            classifier=params.classifier,
            method=params.multi_label_method,
            text_columns=params.text_columns or settings.text_columns,
            cv=params.cv_folds,
            random_state=params.random_state,
        )
        trained.meta = trained.meta.model_copy(update={"label_event_id": high_water})
        return save_model(project.models_dir, model, trained)
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
        text_columns=params.text_columns or settings.text_columns,
        cv=params.cv_folds,
        random_state=params.random_state,
    )
    trained.meta = trained.meta.model_copy(update={"label_event_id": high_water})
    return save_model(project.models_dir, model, trained)
