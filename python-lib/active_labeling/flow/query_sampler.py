"""The query-sampler recipe's library side: score the unlabeled pool, write a queue generation.

The pool streams from the store in chunks; items already labeled are left out; scored
strategies keep only the best rows, so memory is bounded by the chunk size. Strategies that
compare rows with each other (k-center, k-means, BADGE, TypiClust) need the whole pool in
the model's feature space, so their memory grows with the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from active_labeling.errors import InputError
from active_labeling.flow.feature_checks import check_batch_no_infinity, check_no_infinity
from active_labeling.flow.labeled_data import labeled_frame
from active_labeling.flow.project import Project
from active_labeling.models import load_model
from active_labeling.samplers import ScoredSampler
from active_labeling.samplers.registry import STRATEGIES, make_sampler, needs_classifier
from active_labeling.store.datasets import dataset_schema, iter_batches
from active_labeling.store.labels import labeled_item_ids
from active_labeling.store.queue import QueueGeneration, export_generation, write_generation

StrategyName = Literal[tuple(STRATEGIES)]  # type: ignore[valid-type]

#: Strategies that measure distances between rows: they work in the model's feature space
#: (after its preprocessing), with the model's final estimator as the classifier.
FEATURE_SPACE_STRATEGIES = frozenset(
    {"kmeans", "minibatch_kmeans", "kcenter", "wkmeans", "iwkmeans", "badge", "typiclust"}
)


class QuerySamplerParams(BaseModel):
    """Parameters of the query-sampler recipe (the one source of their defaults)."""

    model_config = ConfigDict(extra="forbid")

    strategy: StrategyName = "margin"
    queue_size: int = Field(default=100, ge=1)
    chunk_size: int = Field(default=50_000, ge=1)
    random_state: int = 0
    model_version: str | None = None
    strategy_params: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class QueryResult:
    generation: QueueGeneration
    parquet_path: Any


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def query_sampler(
    con,
    project: Project,
    *,
    dataset: str,
    model: str,
    queue: str,
    params: QuerySamplerParams,
    progress: Callable[[int], None] | None = None,
) -> QueryResult:
    """Rank the unlabeled items of ``dataset`` with ``params.strategy``; append a generation."""
    saved = load_model(project.models_dir, model, params.model_version)
    columns = list(saved.meta.feature_columns)
    saved.check_pool_columns(name for name, _ in dataset_schema(con, dataset))
    pipeline = saved.pipeline
    feature_space = params.strategy in FEATURE_SPACE_STRATEGIES
    if feature_space:
        preprocess = pipeline[:-1].transform
        classifier = pipeline[-1]
    else:
        preprocess = None
        classifier = pipeline
    sampler = make_sampler(
        params.strategy,
        classifier=classifier if needs_classifier(params.strategy) else None,
        batch_size=params.queue_size,
        random_state=params.random_state,
        **params.strategy_params,
    )

    def to_input(frame):
        return _dense(preprocess(frame)) if feature_space else frame

    X_labeled, y_labeled = labeled_frame(con, dataset, columns)
    check_no_infinity(X_labeled, X_labeled.index, dataset)
    if len(X_labeled):
        sampler.fit(to_input(X_labeled), y_labeled.to_numpy())
    else:
        sampler.fit()

    labeled = pa.array(sorted(labeled_item_ids(con, dataset)), pa.string())
    pool_ids: list[pa.Array] = []

    def chunks() -> Iterator:
        for batch in iter_batches(con, dataset, columns, batch_rows=params.chunk_size):
            if len(labeled):
                batch = batch.filter(pc.invert(pc.is_in(batch.column("item_id"), labeled)))
            if progress:
                progress(batch.num_rows)
            if batch.num_rows == 0:
                continue
            check_batch_no_infinity(batch, dataset)
            pool_ids.append(batch.column("item_id"))
            yield to_input(batch.drop_columns(["item_id"]).to_pandas())

    if isinstance(sampler, ScoredSampler):
        stream = chunks()
        first = next(stream, None)
        if first is None:
            raise _nothing_to_queue(dataset)
        positions, scores = sampler.select_with_scores(_prepend(first, stream))
    else:  # needs the whole pool, which only feature-space strategies do (dense arrays)
        whole = list(chunks())
        if not whole:
            raise _nothing_to_queue(dataset)
        positions, scores = sampler.select_with_scores(np.vstack(whole))
    ids = pa.chunked_array(pool_ids).take(pa.array(positions, pa.int64()))
    generation = write_generation(
        con,
        queue=queue,
        dataset=dataset,
        item_ids=ids.to_pylist(),
        scores=None if scores is None else scores.tolist(),
        strategy=params.strategy,
        model_name=model,
        model_version=saved.version,
        params=params.model_dump(),
        pool_rows=int(sum(len(chunk) for chunk in pool_ids)),
    )
    path = export_generation(
        con,
        generation.generation_id,
        project.exports_dir / "queues" / queue / f"generation-{generation.generation_id}.parquet",
    )
    return QueryResult(generation, path)


def _prepend(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def _nothing_to_queue(dataset: str) -> InputError:
    return InputError(f"every item of dataset {dataset!r} is labeled: there is nothing to queue")
