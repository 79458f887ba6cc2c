"""Likely label errors: each label scored by a model that did not see it; suspects marked.

For one saved-model version, clones of its (unfitted) pipeline predict every labeled item
out of fold (``metrics.out_of_fold_proba``); confident learning (``metrics.label_issues``,
the anchor being cleanlab's ``find_label_issues``) picks the labels the probabilities
doubt. They are appended to the store's ``label_suspects`` table with the item's state
event, and the review queue shows the open ones first, most doubtful first (an item
touched since it was scored is no longer a suspect of that run).

:func:`suspect_outcomes` tells what the reviewers made of each run's suspects: confirmed
(corrected), accepted (the label was right), sent back, or still open. A version is scored
once; this module never changes a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from active_labeling.errors import InputError
from active_labeling.flow.feature_checks import check_no_infinity
from active_labeling.flow.labeled_data import labeled_frame
from active_labeling.flow.project import Project
from active_labeling.store.connection import transaction
from active_labeling.store.consensus import ConsensusRule

SUSPECT_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("item_id", pa.string()),
        ("label_event_id", pa.int64()),
        ("label", pa.string()),
        ("suggested", pa.string()),
        ("self_confidence", pa.float64()),
        ("rank", pa.int32()),
        ("marked_at", pa.timestamp("us", tz="UTC")),
    ]
)


#: The columns of :func:`suspect_outcomes`, in order.
OUTCOME_COLUMNS = (
    "dataset",
    "model_name",
    "model_version",
    "scored_at",
    "n_labels",
    "suspects",
    "confirmed",
    "accepted",
    "sent_back",
    "relabeled",
    "open",
)


class LabelErrorParams(BaseModel):
    """How the labels are scored (the step's and the train-model option's parameters)."""

    model_config = ConfigDict(extra="forbid")

    cv_folds: int = Field(default=5, ge=2, le=20)
    random_state: int = 0


@dataclass
class SuspectRun:
    """What one scoring found: the version scored, the labels scored, the suspects."""

    dataset: str
    model_name: str
    model_version: str
    n_labels: int
    n_suspects: int
    scored_before: bool = False


def check_scorable(project: Project, dataset: str) -> None:
    """InputError unless ``dataset``'s labels are single classes a classifier predicts:
    confident learning compares a label with a class's probability, and a spans or boxes
    label is a list with no such probability (its review queue has the disagreements and
    the spot checks, ``review_sample``)."""
    task = project.task_of(dataset)
    if task in ("spans", "boxes"):
        raise InputError(
            f"dataset {dataset!r} is labeled with {task}: likely label errors are found for "
            "class labels (classification and audio); review its disagreements and a "
            "spot-check sample (review_sample in project.toml) instead"
        )
    if project.settings.multi_label:
        raise InputError(
            f"{project.config_path}: the project is multi-label (multi_label = true); likely "
            "label errors are found for single-label projects only"
        )


def find_label_errors(
    con,
    project: Project,
    *,
    dataset: str,
    model: str,
    version: str | None = None,
    params: LabelErrorParams | None = None,
) -> SuspectRun:
    """Score the labels of ``dataset`` with version ``version`` (default: the latest) of
    ``model``; append its suspects. A version scored before is not scored again."""
    from sklearn.base import clone

    from active_labeling.metrics.label_errors import label_issues, out_of_fold_proba
    from active_labeling.models import load_model

    params = params or LabelErrorParams()
    check_scorable(project, dataset)
    saved = load_model(project.models_dir, model, version)
    done = con.execute(
        "SELECT n_labels, n_suspects FROM label_error_runs WHERE dataset = ? AND "
        "model_name = ? AND model_version = ?",
        [dataset, saved.name, saved.version],
    ).fetchone()
    if done is not None:
        return SuspectRun(dataset, saved.name, saved.version, *done, scored_before=True)
    columns = list(saved.meta.feature_columns)
    rule = ConsensusRule.for_dataset(project, dataset)
    with transaction(con):  # the labels and their state events, read together
        frame, labels = labeled_frame(con, dataset, columns, rule)
        states = dict(
            con.execute(
                "SELECT item_id, event_id FROM item_state WHERE dataset = ? AND "
                "item_id IN (SELECT unnest(?::VARCHAR[]))",
                [dataset, labels.index.tolist()],
            ).fetchall()
        )
    check_no_infinity(frame, frame.index, dataset)
    if labels.nunique() < 2:
        raise InputError(
            f"dataset {dataset!r}: scoring labels needs labels of two classes at least "
            f"(it has {labels.nunique()})"
        )
    y = labels.to_numpy()
    proba = out_of_fold_proba(
        clone(saved.pipeline), frame, y, cv=params.cv_folds, random_state=params.random_state
    )
    found = label_issues(y, proba, classes=np.unique(y).tolist())
    found.index = labels.index
    suspects = found[found["issue"]].sort_values("rank")
    now = datetime.now(timezone.utc)
    rows = [
        {
            "dataset": dataset,
            "model_name": saved.name,
            "model_version": saved.version,
            "item_id": item,
            "label_event_id": int(states[item]),
            "label": str(row["label"]),
            "suggested": str(row["suggested"]),
            "self_confidence": float(row["self_confidence"]),
            "rank": int(row["rank"]),
            "marked_at": now,
        }
        for item, row in suspects.iterrows()
    ]
    run = SuspectRun(dataset, saved.name, saved.version, len(labels), len(rows))
    _append(con, rows, run, params, now)
    return run


def _append(con, rows: list[dict], run: SuspectRun, params: LabelErrorParams, now) -> None:
    """The suspects and the run, in one transaction."""
    table = pa.Table.from_pylist(rows, schema=SUSPECT_SCHEMA)
    columns = ", ".join(SUSPECT_SCHEMA.names)
    with transaction(con):
        con.register("_incoming_suspects", table)
        try:
            con.execute(
                f"INSERT INTO label_suspects ({columns}) SELECT {columns} FROM _incoming_suspects"
            )
        finally:
            con.unregister("_incoming_suspects")
        con.execute(
            "INSERT INTO label_error_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                run.dataset,
                run.model_name,
                run.model_version,
                run.n_labels,
                run.n_suspects,
                params.cv_folds,
                now,
            ],
        )


def suspect_outcomes(con, dataset: str | None = None) -> pd.DataFrame:
    """Per scoring run (dataset, model, version): the labels scored, the suspects found and
    what came of them, newest run first.

    A suspect is *confirmed* when the first decision on its item after it was scored is a
    correction, *accepted* when the reviewer kept the label, *sent back* when it went back
    to labeling; *relabeled* when labelers changed the item before any decision, *open*
    while nobody touched it. Empty (with the columns) in a store without the tables.
    """
    columns = list(OUTCOME_COLUMNS)
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'label_error_runs'"
    ).fetchone()[0]
    if not found:
        return pd.DataFrame(columns=columns)
    where = "WHERE r.dataset = ?" if dataset is not None else ""
    return con.execute(
        "WITH first_decision AS (SELECT s.dataset, s.model_name, s.model_version, s.item_id, "
        "s.label_event_id, min(e.event_id) AS decision_id FROM label_suspects s "
        "LEFT JOIN label_events e ON e.dataset = s.dataset AND e.item_id = s.item_id AND "
        "e.event_id > s.label_event_id AND e.review IS NOT NULL GROUP BY ALL), "
        "outcome AS (SELECT f.dataset, f.model_name, f.model_version, e.review, "
        "coalesce(t.event_id = f.label_event_id, false) AS untouched FROM first_decision f "
        "LEFT JOIN label_events e ON e.event_id = f.decision_id "
        "LEFT JOIN item_state t ON t.dataset = f.dataset AND t.item_id = f.item_id), "
        "counts AS (SELECT dataset, model_name, model_version, "
        "count(*) FILTER (WHERE review = 'corrected') AS confirmed, "
        "count(*) FILTER (WHERE review = 'accepted') AS accepted, "
        "count(*) FILTER (WHERE review = 'sent_back') AS sent_back, "
        "count(*) FILTER (WHERE review IS NULL AND NOT untouched) AS relabeled, "
        "count(*) FILTER (WHERE review IS NULL AND untouched) AS open "
        "FROM outcome GROUP BY ALL) "
        "SELECT r.dataset, r.model_name, r.model_version, r.scored_at, r.n_labels, "
        "r.n_suspects AS suspects, coalesce(c.confirmed, 0) AS confirmed, "
        "coalesce(c.accepted, 0) AS accepted, coalesce(c.sent_back, 0) AS sent_back, "
        "coalesce(c.relabeled, 0) AS relabeled, coalesce(c.open, 0) AS open "
        "FROM label_error_runs r LEFT JOIN counts c USING (dataset, model_name, model_version) "
        f"{where} ORDER BY r.scored_at DESC, r.model_name, "
        "TRY_CAST(r.model_version AS BIGINT) DESC",
        [dataset] if dataset is not None else [],
    ).df()[columns]
