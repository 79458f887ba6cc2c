"""The query-sampler recipe's library side: score the unlabeled pool, write a queue generation.

Items already labeled are left out. Where the pool is scored is the engine's business
(``flow.engines``: ``local`` streams it from the store in chunks; ``dask`` and ``spark`` read
its Parquet files on their workers); this module loads the model, fits the strategy on the
labeled set, and writes what the engine selected as a new generation of the queue, the same
table whatever the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from active_labeling.errors import InputError
from active_labeling.flow.engines import ENGINES, QueryEngine, QueryJob, make_engine, model_input
from active_labeling.flow.feature_checks import check_no_infinity
from active_labeling.flow.labeled_data import labeled_frame
from active_labeling.flow.project import Project
from active_labeling.metrics.advice import History
from active_labeling.models import load_model
from active_labeling.samplers.auto import AutoChoice, AutoStrategy
from active_labeling.samplers.registry import (
    DISTANCE_STRATEGIES,
    STRATEGIES,
    check_strategy_kind,
    make_sampler,
    multilabel_params,
    needs_classifier,
)
from active_labeling.store.consensus import ConsensusRule
from active_labeling.store.datasets import dataset_schema
from active_labeling.store.label_sets import label_set_matrix
from active_labeling.store.labels import labeled_item_ids
from active_labeling.store.queue import QueueGeneration, export_generation, write_generation

#: ``auto`` chooses one of the others each run, from the monitoring metrics
#: (``samplers.auto``).
QUERY_STRATEGIES = (*STRATEGIES, "auto", "precomputed")
StrategyName = Literal[QUERY_STRATEGIES]  # type: ignore[valid-type]
EngineName = Literal[ENGINES]  # type: ignore[valid-type]


class QuerySamplerParams(BaseModel):
    """Parameters of the query-sampler recipe (the one source of their defaults)."""

    model_config = ConfigDict(extra="forbid")

    strategy: StrategyName = "margin"
    queue_size: int = Field(default=100, ge=1)
    chunk_size: int = Field(default=50_000, ge=1)
    random_state: int = 0
    model_version: str | None = None
    strategy_params: dict[str, Any] = Field(default_factory=dict)
    engine: EngineName = "local"
    dask_scheduler: str | None = None
    spark_master: str | None = None
    partition_candidates: int | None = Field(default=None, ge=1)

    @field_validator("dask_scheduler", "spark_master", "partition_candidates")
    @classmethod
    def _only_with_its_engine(cls, value, info: ValidationInfo):
        wanted = {"dask_scheduler": ("dask",), "spark_master": ("spark",)}.get(
            info.field_name, ("dask", "spark")
        )
        engine = info.data.get("engine", "local")
        if value not in (None, "") and engine not in wanted:
            raise ValueError(
                f"applies to engine {' or '.join(repr(e) for e in wanted)} only, "
                f"and engine is {engine!r}"
            )
        return value or None


@dataclass(frozen=True)
class QueryResult:
    generation: QueueGeneration
    parquet_path: Any
    #: What ``strategy = "auto"`` chose and why (None for any other strategy).
    auto: AutoChoice | None = None


def choose_auto(
    con,
    *,
    queue: str,
    dataset: str,
    model: str,
    strategy_params: dict,
    multilabel: bool = False,
) -> AutoChoice:
    """What ``auto`` runs now: its choice from the model's monitoring metrics and the
    strategies of the queue's earlier generations (oldest first); for a multi-label model,
    along the multi-label ladder."""
    from active_labeling.flow.monitoring import metric_history

    try:
        auto = AutoStrategy(**strategy_params)
    except TypeError as exc:
        raise InputError(
            f"strategy_params: {exc} (auto takes start, k, exploration_margin, agreement_margin)"
        ) from None
    previous = [
        row[0]
        for row in con.execute(
            "SELECT strategy FROM queue_generations WHERE queue = ? ORDER BY generation_id",
            [queue],
        ).fetchall()
    ]
    history = metric_history(con, model, dataset=dataset)
    return auto.choose(
        History.from_frame(history) if len(history) else None, previous, multilabel=multilabel
    )


def query_sampler(
    con,
    project: Project,
    *,
    dataset: str,
    model: str | None,
    queue: str,
    params: QuerySamplerParams,
    progress: Callable[[int], None] | None = None,
    engine: QueryEngine | None = None,
) -> QueryResult:
    """Rank the unlabeled items of ``dataset`` with ``params.strategy``; append a generation.

    ``engine`` overrides the one ``params.engine`` names (a test or a notebook passes an
    engine bound to a cluster it already holds). ``precomputed`` needs no model, and a spans
    model ranks texts by its own uncertainty (``flow.task_queries``).
    """
    from active_labeling.flow import task_queries
    from active_labeling.models.spans import is_spans_model

    if params.strategy == "precomputed":
        return task_queries.precomputed_query(
            con, project, dataset=dataset, queue=queue, params=params, progress=progress
        )
    if model is None:
        raise InputError(f"strategy {params.strategy!r} needs a saved model: bind the model role")
    if is_spans_model(project.models_dir, model):
        return task_queries.spans_query(
            con,
            project,
            dataset=dataset,
            model=model,
            queue=queue,
            params=params,
            progress=progress,
        )
    saved = load_model(project.models_dir, model, params.model_version)
    saved.check_label_kind(project.settings.multi_label, str(project.config_path))
    multilabel = saved.meta.multi_label
    columns = list(saved.meta.feature_columns)
    saved.check_pool_columns(name for name, _ in dataset_schema(con, dataset))
    pipeline = saved.pipeline
    recorded = params.model_dump()
    auto = None
    if params.strategy == "auto":
        auto = choose_auto(
            con,
            queue=queue,
            dataset=dataset,
            model=model,
            strategy_params=params.strategy_params,
            multilabel=multilabel,
        )
        recorded["auto"] = {"chosen": auto.strategy, "action": auto.action, "reasons": auto.reasons}
        params = params.model_copy(update={"strategy": auto.strategy, "strategy_params": {}})
    check_strategy_kind(params.strategy, multilabel)
    if multilabel:
        # WKMeans weighs with the mean binary uncertainty, BADGE and label cardinality take
        # the model's thresholds: recorded with the generation, and sent to the engines.
        completed = multilabel_params(
            params.strategy, params.strategy_params, list(saved.meta.thresholds.values())
        )
        params = params.model_copy(update={"strategy_params": completed})
        recorded["strategy_params"] = completed
    feature_space = params.strategy in DISTANCE_STRATEGIES
    classifier = pipeline[-1] if feature_space else pipeline
    sampler = make_sampler(
        params.strategy,
        classifier=classifier if needs_classifier(params.strategy) else None,
        batch_size=params.queue_size,
        random_state=params.random_state,
        **params.strategy_params,
    )
    X_labeled, y_labeled = labeled_frame(
        con, dataset, columns, ConsensusRule.for_dataset(project, dataset)
    )
    check_no_infinity(X_labeled, X_labeled.index, dataset)
    labels = y_labeled.to_numpy()
    if multilabel:
        labels = label_set_matrix(
            labels,
            saved.meta.classes,
            allow_empty=project.settings.allow_empty,
            where=lambda i: f"dataset {dataset!r}, item {y_labeled.index[i]!r}",
        )
    if len(X_labeled):
        sampler.fit(model_input(pipeline, X_labeled, feature_space), labels)
    else:
        sampler.fit()
    job = QueryJob(
        con=con,
        project=project,
        dataset=dataset,
        columns=columns,
        params=params,
        saved=saved,
        feature_space=feature_space,
        sampler=sampler,
        labeled_frame=X_labeled,
        labels=labels,
        labeled_ids=pa.array(sorted(labeled_item_ids(con, dataset)), pa.string()),
        progress=progress,
    )
    selection = (engine or make_engine(params)).select(job)
    generation = write_generation(
        con,
        queue=queue,
        dataset=dataset,
        item_ids=selection.item_ids,
        scores=None if selection.scores is None else selection.scores.tolist(),
        strategy=params.strategy,
        model_name=model,
        model_version=saved.version,
        params=recorded,
        pool_rows=selection.pool_rows,
    )
    path = export_generation(
        con,
        generation.generation_id,
        project.exports_dir / "queues" / queue / f"generation-{generation.generation_id}.parquet",
    )
    return QueryResult(generation, path, auto)
