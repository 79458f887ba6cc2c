"""The monitoring recipe's library side: metric rows per model version, and stopping advice.

Reads the label events, the pool, the saved model's versions and, when one is bound, a
holdout dataset; appends to the store's ``metrics`` table (long form: one row per metric
and model version, ``n_labels`` the labels that version was trained on) and
``stopping_advice`` table. Each run measures every version of the model not measured yet,
oldest first, so curves over ``n_labels`` have no hole; a version once measured is never
measured again (nothing is rewritten).

Which labels a version saw is exact: the train-model recipe records the largest label
event id it read (``meta.label_event_id``), and the labels "as of" that event are decided
from ``label_events`` as training decided them (``store.consensus``: a reviewer's decision
over the labels, the consensus of an item labeled twice). The batch ``B_k`` of version
``k`` is the items labeled as of version ``k`` and not as of version ``k-1``. A version
saved without that mark (trained before it existed) is placed by its ``trained_at`` time
instead.

The metrics themselves are the pure functions of :mod:`active_labeling.metrics`; distances
are measured in the feature space of version ``k`` (its pipeline's preprocessing), so mixed
numeric, categorical and text columns work. This module never changes a label, a model or
a queue.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from active_labeling import metrics as m
from active_labeling.errors import InputError
from active_labeling.flow.engines import model_input
from active_labeling.flow.feature_checks import check_no_infinity
from active_labeling.flow.project import Project
from active_labeling.metrics import label_sets
from active_labeling.models import list_models, load_model
from active_labeling.models.multilabel import multilabel_scores, predict_label_sets
from active_labeling.models.saved import SavedModel
from active_labeling.samplers.multilabel_scores import binary_least_confidence
from active_labeling.samplers.scores import get_score_function
from active_labeling.store.connection import quote_identifier, transaction
from active_labeling.store.consensus import ConsensusRule, decide, review_column
from active_labeling.store.datasets import (
    check_columns_exist,
    copy_query_to_file,
    count_rows,
    dataset_schema,
    require_dataset,
)
from active_labeling.store.label_sets import label_set_matrix

#: Metric names written by this module (the ``metric`` column), besides ``ADVICE_METRICS``.
METRICS = (
    "contradiction_ratio",
    "stop_set_kappa",
    "mean_confidence",
    "overall_uncertainty",
    "max_uncertainty",
    "exploration_distance",
    "random_exploration_distance",
    "exploration_gain",
    "batch_agreement",
    "random_batch_agreement",
    "batch_easiness",
    "uncertainty_variance",
    "holdout_accuracy",
    "holdout_macro_f1",
    "holdout_micro_f1",
    "holdout_hamming_loss",
    "cv_accuracy",
    "cv_macro_f1",
    "cv_micro_f1",
    "cv_hamming_loss",
    "class_share",
    "label_cardinality",
    "labels_per_hour",
    "median_lead_time_s",
    "labeler_kappa",
    "labeler_class_kappa",
    "labeler_consensus_agreement",
    "labeler_review_agreement",
    "labeler_pair_kappa",
    "batch_size",
)

#: Sample rows (at most) the max-uncertainty signal is taken over: the advice study's
#: fixed sample of 1,000 pool rows (bench/advice_study.py), drawn at random from the sample.
MAX_UNCERTAINTY_ROWS = 1000

#: MB of distances held at once by the exploration metrics (the sample x the labeled rows
#: would otherwise take up to scikit-learn's 1 GB working memory).
DISTANCE_MEMORY_MB = 64

#: The rows appended to the store's ``metrics`` and ``stopping_advice`` tables (their columns,
#: in the order of ``store.schema``; a test checks that the two agree).
METRIC_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("n_labels", pa.int64()),
        ("computed_at", pa.timestamp("us", tz="UTC")),
        ("details", pa.string()),
    ]
)
ADVICE_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("advice", pa.string()),
        ("reasons", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("n_labels", pa.int64()),
        ("computed_at", pa.timestamp("us", tz="UTC")),
        ("votes", pa.string()),
    ]
)
_METRIC_COLUMNS = ", ".join(METRIC_SCHEMA.names)
_ADVICE_COLUMNS = ", ".join(ADVICE_SCHEMA.names)


class MonitoringParams(BaseModel):
    """Parameters of the monitoring recipe (the one source of their defaults)."""

    model_config = ConfigDict(extra="forbid")

    sample_size: int = Field(default=10_000, ge=1)
    random_state: int = 0
    uncertainty: Literal["least_confidence", "margin", "entropy"] = "margin"
    uncertainty_batches: int = Field(default=1, ge=1)
    cv_folds: int = Field(default=5, ge=2, le=20)
    holdout_label_column: str | None = None
    #: A preset of the advice study (docs/advice-study.md), or "classic", the rules before it,
    #: which the four parameters below configure.
    advice: Literal["cautious", "balanced", "eager", "classic"] = "cautious"
    advice_k: int = Field(default=3, ge=1)
    contradiction_threshold: float = Field(default=0.01, ge=0)
    accuracy_min_gain: float = Field(default=0.005, ge=0)
    quorum: float = Field(default=1.0, gt=0, le=1)
    idle_gap_s: float = Field(default=300.0, gt=0)

    def policy(self) -> m.AdvicePolicy:
        """The stopping advice these parameters configure."""
        if self.advice != "classic":
            return m.preset_policy(self.advice)
        return m.classic_policy(
            k=self.advice_k,
            contradiction_threshold=self.contradiction_threshold,
            accuracy_min_gain=self.accuracy_min_gain,
            quorum=self.quorum,
        )


@dataclass
class MonitoringResult:
    """What one run appended."""

    dataset: str
    model_name: str
    versions: list[str]
    n_rows: int
    advice: dict | None
    exports: list[Any] = field(default_factory=list)


# --- reading the store ---------------------------------------------------------------------


def _label_events(con, dataset: str) -> pd.DataFrame:
    return con.execute(
        "SELECT event_id, item_id, label, status, annotator, created_at, lead_time_ms, "
        f"comment, {review_column(con)} FROM label_events WHERE dataset = ? ORDER BY event_id",
        [dataset],
    ).df()


def _decisions_as_of(events: pd.DataFrame, high_water: int | None, rule: ConsensusRule):
    """What the events up to ``high_water`` decide (``store.consensus``): the labels a
    version saw are the decided ones (a review over the labels, the consensus of an item
    labeled twice; a disputed item left out). None before any event."""
    if high_water is None or events.empty:
        return None
    return decide(events, rule, as_of=high_water)


def _labels_as_of(decisions) -> pd.Series:
    """item_id -> label of the items labeled as of a version, in labeling order."""
    if decisions is None:
        return pd.Series([], dtype=object, name="label")
    labels = decisions.labels()
    return pd.Series(labels.to_numpy(), index=labels.index.to_numpy(), name="label")


def _high_water(con, dataset: str, saved: SavedModel) -> int | None:
    if saved.meta.label_event_id is not None:
        return int(saved.meta.label_event_id)
    row = con.execute(
        "SELECT max(event_id) FROM label_events WHERE dataset = ? AND created_at <= ?",
        [dataset, saved.meta.trained_at],
    ).fetchone()
    return None if row[0] is None else int(row[0])


def _read_items(con, dataset: str, columns: list[str], item_ids) -> pd.DataFrame:
    """The feature columns of ``item_ids`` (index: item id, in the order given)."""
    relation = require_dataset(con, dataset)
    ids = [str(i) for i in item_ids]
    selected = ", ".join(f"d.{quote_identifier(c)}" for c in columns)
    frame = con.execute(
        f"SELECT d.item_id, {selected} FROM {relation} d "
        "WHERE d.item_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    ).df()
    frame = frame.set_index("item_id").reindex(ids)
    check_no_infinity(frame, frame.index, dataset)
    return frame


def contradiction_sample(con, dataset: str, size: int, random_state: int) -> list[str]:
    """The item ids of the fixed sample of ``dataset``: drawn once, stored, then reused.

    ``size`` positions of the dataset ordered by item id, drawn by
    :func:`~active_labeling.metrics.sample_for_contradictions` with ``random_state``.
    """
    key = [dataset, size, random_state]
    query = (
        "SELECT DISTINCT position, item_id FROM monitoring_samples "
        "WHERE dataset = ? AND size = ? AND random_state = ? ORDER BY position"
    )
    stored = con.execute(query, key).fetchall()
    if stored:
        return [row[1] for row in stored]
    relation = require_dataset(con, dataset)
    n_pool = count_rows(con, dataset)
    if n_pool == 0:
        raise InputError(f"dataset {dataset!r} has no row: there is nothing to monitor")
    positions = m.sample_for_contradictions(n_pool, size, random_state=random_state)
    with transaction(con):
        if not con.execute(query, key).fetchall():
            con.execute(
                "INSERT INTO monitoring_samples "
                "SELECT ?, ?, ?, r.position, r.item_id FROM "
                "(SELECT item_id, row_number() OVER (ORDER BY item_id) - 1 AS position "
                f"FROM {relation}) r WHERE r.position IN (SELECT unnest(?::BIGINT[]))",
                [*key, positions.tolist()],
            )
    return [row[1] for row in con.execute(query, key).fetchall()]


def _holdout(con, dataset: str, label_column: str, columns: list[str]):
    check_columns_exist(con, dataset, [*columns, label_column])
    relation = require_dataset(con, dataset)
    selected = ", ".join(quote_identifier(c) for c in columns)
    label = quote_identifier(label_column)
    frame = con.execute(
        f"SELECT item_id, {selected}, CAST({label} AS VARCHAR) AS __label__ FROM {relation}"
    ).df()
    if frame.empty:
        raise InputError(f"holdout dataset {dataset!r} has no row")
    missing = frame["__label__"].isna() | (frame["__label__"].str.strip() == "")
    if missing.any():
        item = frame.loc[missing.idxmax(), "item_id"]
        raise InputError(
            f"holdout dataset {dataset!r}, item {item!r}: column {label_column!r} is empty; "
            "every holdout row needs its label"
        )
    frame = frame.set_index("item_id")
    check_no_infinity(frame[columns], frame.index, dataset)
    return frame[columns], frame["__label__"].astype(str)


# --- measuring ------------------------------------------------------------------------------


class _Versions:
    """Saved versions of one model, loaded once each, with their predictions cached."""

    def __init__(self, project: Project, con, dataset: str, model: str, versions: list[str]):
        self.project, self.con, self.dataset, self.model = project, con, dataset, model
        self.order = versions
        self._saved: dict[str, SavedModel] = {}
        self._sample_proba: dict[str, np.ndarray] = {}

    def saved(self, version: str) -> SavedModel:
        if version not in self._saved:
            self._saved[version] = load_model(self.project.models_dir, self.model, version)
        return self._saved[version]

    def previous(self, version: str) -> str | None:
        position = self.order.index(version)
        return self.order[position - 1] if position > 0 else None

    def proba(self, version: str, frame: pd.DataFrame) -> np.ndarray:
        saved = self.saved(version)
        return saved.pipeline.predict_proba(frame[saved.meta.feature_columns])

    def _decide(self, version: str, proba: np.ndarray) -> np.ndarray:
        """Predicted classes, or for a multi-label version the predicted label sets (an
        indicator matrix: each class where its probability reaches its threshold)."""
        meta = self.saved(version).meta
        if meta.multi_label:
            return predict_label_sets(proba, list(meta.thresholds.values()))
        return np.asarray(meta.classes, dtype=object)[proba.argmax(axis=1)]

    def predict(self, version: str, frame: pd.DataFrame) -> np.ndarray:
        return self._decide(version, self.proba(version, frame))

    def sample_proba(self, version: str, sample: pd.DataFrame) -> np.ndarray:
        if version not in self._sample_proba:
            self._sample_proba[version] = self.proba(version, sample)
        return self._sample_proba[version]

    def sample_predict(self, version: str, sample: pd.DataFrame) -> np.ndarray:
        return self._decide(version, self.sample_proba(version, sample))


def _clean(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _json(details: dict) -> str:
    def plain(value):
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return json.dumps({k: plain(v) for k, v in details.items()}, sort_keys=True, default=str)


def monitor(
    con,
    project: Project,
    *,
    dataset: str,
    model: str,
    params: MonitoringParams,
    holdout: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> MonitoringResult:
    """Measure every version of ``model`` not measured yet; append metrics and advice.

    Returns what was appended: the versions measured (oldest first), the number of metric
    rows, and the advice for the newest of them (the latest advice already stored when
    every version was measured before).
    """
    versions = list_models(project.models_dir).get(model, [])
    if not versions:
        raise InputError(
            f"no saved model {model!r} yet: run the train-model recipe first "
            f"(`active-labeling run {project.root} train`)"
        )
    available = [name for name, _ in dataset_schema(con, dataset)]
    measured = {
        row[0]
        for row in con.execute(
            "SELECT DISTINCT model_version FROM metrics WHERE dataset = ? AND model_name = ?",
            [dataset, model],
        ).fetchall()
    }
    missing = [v for v in versions if v not in measured]
    if not missing:
        return MonitoringResult(dataset, model, [], 0, latest_advice(con, model, dataset=dataset))

    loaded = _Versions(project, con, dataset, model, versions)
    needed = {v for v in missing} | {loaded.previous(v) for v in missing} - {None}
    # The uncertainty of earlier batches, pooled over uncertainty_batches versions.
    for version in missing:
        position = versions.index(version)
        for earlier in versions[max(0, position - params.uncertainty_batches) : position + 1]:
            needed.add(earlier)
    high_water = {}
    columns: list[str] = []
    for version in sorted(needed, key=int):
        saved = loaded.saved(version)
        saved.check_label_kind(project.settings.multi_label, str(project.config_path))
        saved.check_pool_columns(available)
        high_water[version] = _high_water(con, dataset, saved)
        columns += [c for c in saved.meta.feature_columns if c not in columns]

    events = _label_events(con, dataset)
    rule = ConsensusRule.for_dataset(project, dataset)
    decisions = {v: _decisions_as_of(events, hw, rule) for v, hw in high_water.items()}
    labels = {v: _labels_as_of(d) for v, d in decisions.items()}
    labeled_ids = list(dict.fromkeys(i for series in labels.values() for i in series.index))
    features = _read_items(con, dataset, columns, labeled_ids)
    sample_ids = contradiction_sample(con, dataset, params.sample_size, params.random_state)
    sample = _read_items(con, dataset, columns, sample_ids)
    max_rows = np.zeros(len(sample), dtype=bool)
    max_rows[
        np.random.default_rng(params.random_state).permutation(len(sample))[:MAX_UNCERTAINTY_ROWS]
    ] = True
    holdout_data = None
    if holdout:
        label_column = params.holdout_label_column or project.settings.label_column
        holdout_data = _holdout(con, holdout, label_column, columns)

    multilabel = project.settings.multi_label
    kind = _MultiLabel(project, dataset, loaded) if multilabel else _SingleLabel()
    score = binary_least_confidence if multilabel else get_score_function(params.uncertainty)
    batch_scores: dict[str, np.ndarray | None] = {}

    def batch(version: str) -> pd.Series:
        previous = loaded.previous(version)
        current = labels[version]
        if previous is None:
            return current
        return current[~current.index.isin(labels[previous].index)]

    def batch_uncertainty(version: str) -> np.ndarray | None:
        if version not in batch_scores:
            previous = loaded.previous(version)
            new = batch(version)
            batch_scores[version] = (
                None
                if previous is None or new.empty
                else score(loaded.proba(previous, features.loc[new.index]))
            )
        return batch_scores[version]

    rows: list[dict] = []
    advice_rows: list[dict] = []
    history = metric_history(con, model, dataset=dataset)
    computed_at = datetime.now(timezone.utc)
    for version in missing:
        current = labels[version]
        n_labels = len(current)
        version_rows: list[dict] = []

        def add(metric: str, value, _rows=version_rows, _n=n_labels, _v=version, **details):
            _rows.append(
                {
                    "dataset": dataset,
                    "metric": metric,
                    "value": _clean(value),
                    "model_name": model,
                    "model_version": _v,
                    "n_labels": _n,
                    "computed_at": computed_at,
                    "details": _json(details),
                }
            )

        saved = loaded.saved(version)
        previous = loaded.previous(version)
        proba_sample = loaded.sample_proba(version, sample)
        add(
            "mean_confidence",
            kind.mean_confidence(proba_sample),
            sample_size=len(sample),
            **kind.method("mean_confidence"),
        )
        unlabeled = ~sample.index.isin(current.index)
        if unlabeled.any():
            mean_u, _ = kind.sample_uncertainty(proba_sample[unlabeled])
            add(
                "overall_uncertainty",
                mean_u,
                sample_size=int(unlabeled.sum()),
                **kind.method("uncertainty"),
            )
            # A maximum grows with the rows it is taken over: over the same number as in the
            # advice study (MAX_UNCERTAINTY_ROWS), so that its calibrated threshold holds.
            subset = unlabeled & max_rows
            if subset.any():
                _, max_u = kind.sample_uncertainty(proba_sample[subset])
                add(
                    "max_uncertainty",
                    max_u,
                    sample_size=int(subset.sum()),
                    **kind.method("uncertainty"),
                )
        if previous is not None:
            before, now = (
                loaded.sample_predict(previous, sample),
                loaded.sample_predict(version, sample),
            )
            add(
                "contradiction_ratio",
                kind.contradiction_ratio(before, now),
                previous_version=previous,
                sample_size=len(sample),
                **kind.method("contradiction_ratio"),
            )
            add(
                "stop_set_kappa",
                kind.stop_set_agreement(before, now),
                previous_version=previous,
                sample_size=len(sample),
                **kind.method("agreement"),
            )
            new = batch(version)
            earlier = labels[previous]
            add("batch_size", len(new), previous_version=previous)
            if len(new) and len(earlier):
                space_new = model_input(saved.pipeline, features.loc[new.index], True)
                space_earlier = model_input(saved.pipeline, features.loc[earlier.index], True)
                space_sample = model_input(saved.pipeline, sample, True)
                add(
                    "exploration_distance",
                    m.exploration_distance(
                        space_new, space_earlier, working_memory=DISTANCE_MEMORY_MB
                    ),
                )
                add(
                    "exploration_gain",
                    m.exploration_gain(
                        space_sample, space_earlier, space_new, working_memory=DISTANCE_MEMORY_MB
                    ),
                    sample_size=len(sample),
                )
                # Both classifiers know only the labels before the batch: the version that
                # chose it (k-1), not version k, which was trained on the batch's labels.
                add(
                    "batch_agreement",
                    kind.batch_agreement(
                        loaded.predict(previous, features.loc[new.index]),
                        space_new,
                        space_earlier,
                        kind.labels(earlier, previous),
                    ),
                    method=kind.method("agreement").get("method", "cohen_kappa"),
                    previous_version=previous,
                )
                add(
                    "batch_easiness",
                    kind.batch_easiness(
                        loaded.predict(previous, features.loc[new.index]),
                        kind.labels(new, previous),
                    ),
                    previous_version=previous,
                    **kind.method("easiness"),
                )
                # What a uniformly drawn batch would have measured: the sample rows still
                # unlabeled before the batch stand for it (the strategy advice compares).
                spare = ~sample.index.isin(earlier.index)
                if spare.any():
                    add(
                        "random_exploration_distance",
                        m.exploration_distance(
                            space_sample[spare], space_earlier, working_memory=DISTANCE_MEMORY_MB
                        ),
                        sample_size=int(spare.sum()),
                    )
                    add(
                        "random_batch_agreement",
                        kind.batch_agreement(
                            loaded.sample_predict(previous, sample)[spare],
                            space_sample[spare],
                            space_earlier,
                            kind.labels(earlier, previous),
                        ),
                        method=kind.method("agreement").get("method", "cohen_kappa"),
                        previous_version=previous,
                        sample_size=int(spare.sum()),
                    )
            position = versions.index(version)
            recent = [
                batch_uncertainty(v)
                for v in versions[max(0, position - params.uncertainty_batches + 1) : position + 1]
            ]
            recent = [scores for scores in recent if scores is not None and len(scores)]
            if recent:
                add(
                    "uncertainty_variance",
                    m.uncertainty_variance(recent, window=len(recent)),
                    uncertainty="mean_binary_least_confidence"
                    if multilabel
                    else params.uncertainty,
                    batches=len(recent),
                )
        if holdout_data is not None:
            X_holdout, y_holdout = holdout_data
            predicted = loaded.predict(version, X_holdout)
            for metric, value, details in kind.holdout(y_holdout, predicted, version, holdout):
                add(metric, value, **details)
        elif multilabel:
            for metric, value, details in _cross_validated_sets(saved):
                add(metric, value, **details)
        else:
            for metric, value, details in _cross_validated(saved, features, current, params):
                add(metric, value, **details)
        label_metrics = (
            _label_set_metrics(
                events, high_water[version], kind.labels(current, version), saved, params
            )
            if multilabel
            else _label_metrics(events, high_water[version], current, params, decisions[version])
        )
        for metric, value, details in label_metrics:
            add(metric, value, **details)

        rows += version_rows
        history = pd.concat([history, pd.DataFrame(version_rows)], ignore_index=True)
        result = m.advise(
            m.History.from_frame(history[history["model_name"] == model]), params.policy()
        )
        advice_rows.append(
            {
                "dataset": dataset,
                "advice": result.advice,
                "reasons": json.dumps(result.reasons),
                "model_name": model,
                "model_version": version,
                "n_labels": n_labels,
                "computed_at": computed_at,
                "votes": json.dumps({"policy": params.advice, "votes": result.votes_json()}),
            }
        )
        if progress is not None:
            progress(1)

    _append(con, rows, advice_rows)
    last = advice_rows[-1]
    return MonitoringResult(
        dataset,
        model,
        missing,
        len(rows),
        _parsed(last),
    )


def _cross_validated(saved: SavedModel, features, labels: pd.Series, params: MonitoringParams):
    """The version's own cross-validated scores (train-model computed them), marked
    optimistic; computed here only when the version has none."""
    cv = saved.meta.cv_scores
    if cv is not None:
        details = {
            "optimistic": True,
            "method": "cross-validation",
            "folds": len(cv.accuracy.folds),
            "source": "train-model",
        }
        yield "cv_accuracy", cv.accuracy.mean, {**details, "std": cv.accuracy.std}
        yield "cv_macro_f1", cv.f1_macro.mean, {**details, "std": cv.f1_macro.std}
        return
    try:
        scores = m.cross_validated_scores(
            saved.pipeline,
            features.loc[labels.index, saved.meta.feature_columns],
            labels.to_numpy(),
            cv=params.cv_folds,
            random_state=params.random_state,
        )
    except InputError:  # a single class, or a single row: no cross-validation possible
        return
    details = {
        "optimistic": True,
        "method": "cross-validation",
        "folds": scores["n_splits"],
        "note": scores["note"],
    }
    yield "cv_accuracy", scores["accuracy"], details
    yield "cv_macro_f1", scores["macro_f1"], details


class _SingleLabel:
    """The metrics of a single-label project: predictions are classes."""

    mean_confidence = staticmethod(m.mean_confidence)
    sample_uncertainty = staticmethod(m.sample_uncertainty)
    contradiction_ratio = staticmethod(m.contradiction_ratio)
    stop_set_agreement = staticmethod(m.stop_set_kappa)
    batch_agreement = staticmethod(m.batch_agreement)
    batch_easiness = staticmethod(m.batch_easiness)

    def method(self, what: str) -> dict:
        return {}

    def labels(self, labels: pd.Series, version: str) -> np.ndarray:
        return labels.to_numpy()

    def holdout(self, y_holdout: pd.Series, predicted, version: str, dataset: str):
        scores = m.holdout_scores(y_holdout.to_numpy(), predicted)
        details = {"optimistic": False, "method": "holdout", "n": len(y_holdout)}
        yield "holdout_accuracy", scores["accuracy"], details
        yield "holdout_macro_f1", scores["macro_f1"], details


class _MultiLabel:
    """The metrics of a multi-label project (``metrics.label_sets``): predictions and
    labels are sets (indicator matrices), agreement is their Jaccard index, uncertainty and
    confidence those of each class's binary decision. The names stay those the stopping
    advice reads; ``details.method`` says which variant a row holds."""

    mean_confidence = staticmethod(label_sets.binary_mean_confidence)
    sample_uncertainty = staticmethod(label_sets.binary_sample_uncertainty)
    contradiction_ratio = staticmethod(label_sets.set_contradiction_ratio)
    stop_set_agreement = staticmethod(label_sets.set_agreement)
    batch_agreement = staticmethod(label_sets.set_batch_agreement)
    batch_easiness = staticmethod(label_sets.set_batch_easiness)

    _METHODS: ClassVar[dict[str, str]] = {
        "mean_confidence": "mean binary confidence",
        "uncertainty": "mean binary least confidence",
        "contradiction_ratio": "label set changed",
        "agreement": "jaccard",
        "easiness": "jaccard",
    }

    def __init__(self, project: Project, dataset: str, versions: _Versions):
        self.project, self.dataset, self.versions = project, dataset, versions

    def method(self, what: str) -> dict:
        return {"method": self._METHODS[what]}

    def labels(self, labels: pd.Series, version: str, where: str | None = None) -> np.ndarray:
        """The label sets of ``labels`` (item -> JSON list) over the classes of ``version``."""
        where = where or f"dataset {self.dataset!r}"
        return label_set_matrix(
            labels.to_numpy(),
            self.versions.saved(version).meta.classes,
            where=lambda i: f"{where}, item {labels.index[i]!r}",
        )

    def holdout(self, y_holdout: pd.Series, predicted, version: str, dataset: str):
        truth = self.labels(y_holdout, version, where=f"holdout dataset {dataset!r}")
        scores = multilabel_scores(truth, predicted)
        details = {"optimistic": False, "method": "holdout", "n": len(y_holdout)}
        # Accuracy is the subset accuracy (the whole set right), as scikit-learn's
        # accuracy_score counts it on sets: the signal of the holdout and cost rules.
        yield "holdout_accuracy", scores["subset_accuracy"], {**details, "score": "subset"}
        yield "holdout_micro_f1", scores["f1_micro"], details
        yield "holdout_macro_f1", scores["f1_macro"], details
        yield "holdout_hamming_loss", scores["hamming_loss"], details


def _cross_validated_sets(saved: SavedModel):
    """A multi-label version's own cross-validated scores (train-model computed them, with
    thresholds chosen on the other folds), marked optimistic."""
    cv = saved.meta.cv_scores
    if cv is None:
        return
    details = {
        "optimistic": True,
        "method": "cross-validation",
        "folds": len(cv.f1_micro.folds),
        "source": "train-model",
    }
    yield (
        "cv_accuracy",
        cv.subset_accuracy.mean,
        {**details, "score": "subset", "std": cv.subset_accuracy.std},
    )
    yield "cv_micro_f1", cv.f1_micro.mean, {**details, "std": cv.f1_micro.std}
    yield "cv_macro_f1", cv.f1_macro.mean, {**details, "std": cv.f1_macro.std}
    yield "cv_hamming_loss", cv.hamming_loss.mean, {**details, "std": cv.hamming_loss.std}


def _label_set_metrics(events: pd.DataFrame, high_water, Y: np.ndarray, saved: SavedModel, params):
    """Class frequency, label cardinality, and the labelers' pace and per-class agreement,
    as of a multi-label version's labels."""
    if Y.shape[0] == 0:
        return
    classes = saved.meta.classes
    for label, share in label_sets.class_frequency(Y, classes).items():
        yield "class_share", share, {"class": label, "method": "share of items holding it"}
    yield "label_cardinality", label_sets.label_cardinality(Y), {}
    seen = events[events["event_id"] <= high_water] if high_water is not None else events[:0]
    seen = seen[seen["review"].isna()]  # labelers' events only: a review is no labeler's work
    if seen.empty:
        return
    yield from _pace(seen, params.idle_gap_s)
    agreement = label_sets.per_class_labeler_agreement(seen, classes)
    measured = {c: a for c, a in agreement.items() if a["n_items"]}
    for c, a in measured.items():
        yield (
            "labeler_class_kappa",
            a["kappa"],
            {"class": c, **{k: a[k] for k in ("method", "n_items", "n_annotators")}},
        )
    kappas = [a["kappa"] for a in measured.values() if math.isfinite(a["kappa"])]
    if measured:
        first = next(iter(measured.values()))
        yield (
            "labeler_kappa",
            float(np.mean(kappas)) if kappas else math.nan,
            {
                "method": f"mean per-class {first['method']} kappa",
                "classes": len(kappas),
                "n_items": first["n_items"],
                "n_annotators": first["n_annotators"],
            },
        )


def _pace(seen: pd.DataFrame, idle_gap_s: float):
    """Labels per hour per annotator, and the median lead time."""
    pace = m.labels_per_hour(seen, idle_gap_s=idle_gap_s)
    for row in pace.itertuples(index=False):
        if math.isfinite(row.labels_per_hour):
            yield (
                "labels_per_hour",
                row.labels_per_hour,
                {
                    "annotator": row.annotator,
                    "n_labels": int(row.n_labels),
                    "active_hours": row.active_hours,
                },
            )
    lead = m.median_lead_time(seen)
    if math.isfinite(lead):
        yield "median_lead_time_s", lead, {}


def _label_metrics(events: pd.DataFrame, high_water, labels: pd.Series, params, decisions=None):
    """Class balance and the labelers' pace, agreement and quality, as of the version's
    labels (labelers' events only: reviewers' decisions are no labeler's work)."""
    if labels.empty:
        return
    for label, share in m.class_balance(labels.to_numpy()).items():
        yield "class_share", share, {"class": label}
    seen = events[events["event_id"] <= high_water] if high_water is not None else events[:0]
    seen = seen[seen["review"].isna()]
    if seen.empty:
        return
    yield from _pace(seen, params.idle_gap_s)
    if decisions is not None:
        yield from _labeler_quality(decisions)


def _labeler_quality(decisions):
    """Agreement between labelers on their live labels (a label a reviewer sent back no
    longer counts): overall kappa, per labeler with the consensus and with the reviewers,
    per pair (``metrics.labeler_quality``)."""
    from active_labeling.metrics.labeler_quality import labeler_scores, pair_kappas

    votes = decisions.votes
    if votes.empty:
        return
    agreement = m.labeler_agreement(votes.assign(status="labeled"))
    if agreement["n_items"]:
        yield (
            "labeler_kappa",
            agreement["kappa"],
            {k: agreement[k] for k in ("method", "n_items", "n_annotators")},
        )
    for row in labeler_scores(votes, decisions.items).itertuples(index=False):
        if row.consensus_items:
            yield (
                "labeler_consensus_agreement",
                row.consensus_agreement,
                {"annotator": row.annotator, "n_items": row.consensus_items},
            )
        if row.reviewed_items:
            yield (
                "labeler_review_agreement",
                row.review_agreement,
                {"annotator": row.annotator, "n_items": row.reviewed_items},
            )
    for row in pair_kappas(votes).itertuples(index=False):
        yield (
            "labeler_pair_kappa",
            row.kappa,
            {
                "annotators": f"{row.annotator_a} & {row.annotator_b}",
                "n_items": row.n_items,
                "agreement": row.agreement,
            },
        )


def _append(con, rows: list[dict], advice_rows: list[dict]) -> None:
    """Append the metric and advice rows in one transaction."""
    metric_table = pa.Table.from_pylist(rows, schema=METRIC_SCHEMA)
    advice_table = pa.Table.from_pylist(advice_rows, schema=ADVICE_SCHEMA)
    with transaction(con):
        # Registered inside the transaction: BEGIN completes any result left pending.
        con.register("_incoming_metrics", metric_table)
        con.register("_incoming_advice", advice_table)
        try:
            con.execute(
                f"INSERT INTO metrics ({_METRIC_COLUMNS}) "
                f"SELECT {_METRIC_COLUMNS} FROM _incoming_metrics"
            )
            con.execute(
                f"INSERT INTO stopping_advice ({_ADVICE_COLUMNS}) "
                f"SELECT {_ADVICE_COLUMNS} FROM _incoming_advice"
            )
        finally:
            con.unregister("_incoming_metrics")
            con.unregister("_incoming_advice")


def export_monitoring(con, project: Project, name: str, table: str, dataset: str, model: str):
    """Write the rows of ``metrics`` or ``stopping_advice`` for one dataset and model to
    ``exports/monitoring/<name>.parquet`` (atomically)."""
    if table not in ("metrics", "stopping_advice"):
        raise InputError(f"no monitoring table {table!r}")
    quoted = "'" + dataset.replace("'", "''") + "'", "'" + model.replace("'", "''") + "'"
    query = (
        f"SELECT * FROM {table} WHERE dataset = {quoted[0]} AND model_name = {quoted[1]} "
        "ORDER BY n_labels, TRY_CAST(model_version AS BIGINT), computed_at"
    )
    return copy_query_to_file(con, query, project.exports_dir / "monitoring" / f"{name}.parquet")


# --- reading the results (the dashboard, the CLI) -------------------------------------------


def _where(**filters) -> tuple[str, list]:
    """A WHERE clause matching every filter that is not None, and its parameters."""
    given = {column: value for column, value in filters.items() if value is not None}
    clause = " AND ".join(f"{column} = ?" for column in given)
    return (f"WHERE {clause}" if clause else ""), list(given.values())


def metric_history(con, model_name: str | None = None, *, dataset: str | None = None):
    """The metrics table in long form, oldest version first (versions in training order,
    whatever their label counts); ``details`` parsed to dicts.

    Columns: dataset, metric, value, model_name, model_version, n_labels, computed_at,
    details.
    """
    clause, args = _where(model_name=model_name, dataset=dataset)
    frame = con.execute(
        f"SELECT {_METRIC_COLUMNS} FROM metrics {clause} "
        "ORDER BY model_name, TRY_CAST(model_version AS BIGINT), computed_at, metric",
        args,
    ).df()
    frame["details"] = [json.loads(d) if d else {} for d in frame["details"]]
    return frame


def latest_advice(con, model_name: str | None = None, *, dataset: str | None = None):
    """The newest stopping advice as a dict (reasons as a list), or None if there is none."""
    clause, args = _where(model_name=model_name, dataset=dataset)
    row = con.execute(
        f"SELECT {_ADVICE_COLUMNS} FROM stopping_advice {clause} "
        # One monitoring run stamps every version it measures with the same time: the newest
        # version is the latest advice (label counts can go down with undos).
        "ORDER BY computed_at DESC, TRY_CAST(model_version AS BIGINT) DESC, n_labels DESC "
        "LIMIT 1",
        args,
    ).fetchone()
    if row is None:
        return None
    return _parsed(dict(zip(ADVICE_SCHEMA.names, row, strict=True)))


def _parsed(advice: dict) -> dict:
    """An advice row with its reasons and votes parsed (a row from before the votes were
    stored has none, and no policy name)."""
    votes = json.loads(advice["votes"]) if advice.get("votes") else {}
    if isinstance(votes, list):  # the votes alone, without the policy's name
        votes = {"votes": votes}
    return {
        **advice,
        "reasons": json.loads(advice["reasons"]),
        "policy": votes.get("policy"),
        "votes": votes.get("votes", []),
    }
