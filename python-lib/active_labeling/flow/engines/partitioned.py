"""Engines that score partitions on workers and merge their candidates on the driver.

Every distributed engine does three things, and only the first differs between them:

1. run :func:`~active_labeling.flow.engines.partition.score_partition` on each partition of
   the pool, read in place from Parquet (:meth:`PartitionedEngine.run_partitions`);
2. merge the partitions' candidates on the driver: the global best by score, ties to the
   smaller global position, exactly as the local engine breaks them;
3. for strategies that compare rows with each other, run the strategy's own sampler on the
   merged candidates (the second stage of a two-stage selection).

Score-based strategies (random, least confidence, margin, entropy, committee) and the
weighted k-means pair (wkmeans, iwkmeans: their first step already keeps the most uncertain
rows) select exactly what the local engine selects. The others (kcenter, kmeans,
minibatch_kmeans, typiclust, badge) see a prefiltered pool; ``docs/engines.md`` measures
what that costs.
"""

from __future__ import annotations

import hashlib
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from active_labeling.errors import InputError
from active_labeling.flow.engines.base import (
    FITTED_ON_LABELS,
    SCORED_STRATEGIES,
    QueryEngine,
    QueryJob,
    Selection,
    nothing_to_queue,
)
from active_labeling.flow.engines.partition import (
    CANDIDATES,
    PartitionTask,
    SharedData,
)
from active_labeling.flow.engines.pool import ParquetPool, labeled_filter, open_pool
from active_labeling.models.saved import MODEL_FILE
from active_labeling.samplers._validation import check_positive_int, effective_batch_size
from active_labeling.samplers.base import top_k

#: For strategies that need the whole pool: candidates each partition keeps, per row of the
#: queue, unless ``partition_candidates`` says otherwise. k-center prefilters by k-center
#: greedy on each partition (its cost grows with this number); BADGE by the norm of the
#: gradient embedding; the k-means family and TypiClust by a uniform sample of the pool.
CANDIDATES_PER_QUEUE_ROW = {
    "kcenter": 2,
    "badge": 10,
    "kmeans": 100,
    "minibatch_kmeans": 100,
    "typiclust": 100,
}

#: How a partition prefilters for each strategy that needs the whole pool.
PREFILTER = {
    "kcenter": "kcenter",
    "badge": "gradient_norm",
    "kmeans": "random",
    "minibatch_kmeans": "random",
    "typiclust": "random",
}


@dataclass(frozen=True)
class Plan:
    """What the partitions compute and what the driver does with their candidates."""

    task: PartitionTask
    #: The driver keeps the global best ``keep`` candidates by score; None keeps them all.
    keep: int | None
    #: Whether the strategy's sampler runs on the kept candidates (else they are the queue).
    second_stage: bool


def plan_for(job: QueryJob) -> Plan:
    """The two-stage plan of ``job.params.strategy`` (a single stage for scored ones)."""
    params = job.params
    strategy, q = params.strategy, params.queue_size
    common = dict(
        strategy=strategy,
        strategy_params=tuple(sorted(params.strategy_params.items())),
        queue_size=q,
        random_state=params.random_state,
        feature_space=job.feature_space,
        chunk_size=params.chunk_size,
    )
    if strategy in SCORED_STRATEGIES:
        score = "random" if strategy == "random" else "strategy"
        task = PartitionTask(mode="top", score=score, k=q, keep_rows=False, **common)
        return Plan(task, keep=q, second_stage=False)
    if strategy in ("wkmeans", "iwkmeans"):
        k = check_positive_int(job.sampler.beta, "beta") * q
        task = PartitionTask(mode="top", score="strategy", k=k, keep_rows=True, **common)
        return Plan(task, keep=k, second_stage=True)
    if strategy not in PREFILTER:
        raise InputError(f"strategy {strategy!r} has no plan for a distributed engine")
    m = params.partition_candidates or CANDIDATES_PER_QUEUE_ROW[strategy] * q
    if m < q:
        raise InputError(
            f"partition_candidates={m} is less than queue_size={q}: each partition must keep "
            "at least as many candidates as the queue holds"
        )
    if PREFILTER[strategy] == "kcenter":
        task = PartitionTask(mode="kcenter", score="none", k=m, keep_rows=True, **common)
        return Plan(task, keep=None, second_stage=True)
    task = PartitionTask(mode="top", score=PREFILTER[strategy], k=m, keep_rows=True, **common)
    return Plan(task, keep=m, second_stage=True)


class PartitionedEngine(QueryEngine):
    """An engine that scores partitions somewhere and merges them here (the driver)."""

    @abstractmethod
    def run_partitions(
        self,
        pool: ParquetPool,
        task: PartitionTask,
        shared: SharedData,
        progress: Callable[[int], None] | None,
    ) -> list[pa.Table]:
        """Run ``score_partition`` on every partition of ``pool``; their candidate tables.

        ``shared`` (the pool, the model's bytes, the labeled rows) is sent to the workers
        once; ``progress`` is called with the rows of each partition done.
        """

    def select(self, job: QueryJob) -> Selection:
        plan = plan_for(job)
        started = time.perf_counter()
        with open_pool(
            job.con, job.project, job.dataset, job.columns, row_group_rows=job.params.chunk_size
        ) as pool:
            model = (job.saved.path / MODEL_FILE).read_bytes()
            needs_labeled = plan.task.strategy in FITTED_ON_LABELS or plan.task.mode == "kcenter"
            shared = SharedData(
                pool=pool,
                model=model,
                model_digest=hashlib.sha256(model).hexdigest(),
                labeled=labeled_filter(pool, job.labeled_ids),
                labeled_frame=job.labeled_frame if needs_labeled else None,
                labels=np.asarray(job.labels) if needs_labeled else None,
            )
            opened = time.perf_counter()
            tables = self.run_partitions(pool, plan.task, shared, job.progress)
        scored = time.perf_counter()
        candidates = pa.concat_tables([CANDIDATES.empty_table(), *tables])
        stats = _partition_stats(candidates)
        pool_rows = int(sum(stats["partition_rows"]))
        if pool_rows == 0:
            raise nothing_to_queue(job.dataset)
        selection = _second_stage(job, plan, candidates, pool_rows)
        stats.update(
            engine=self.name,
            candidates=candidates.num_rows,
            prepare_seconds=opened - started,
            partitions_seconds=scored - opened,
            driver_seconds=time.perf_counter() - scored,
        )
        selection.stats = stats
        return selection


def _partition_stats(candidates: pa.Table) -> dict:
    """Rows and seconds of each partition (one value per partition that kept candidates)."""
    parts = candidates.select(["partition", "partition_rows", "partition_seconds"]).to_pandas()
    parts = parts.drop_duplicates("partition").sort_values("partition")
    return {
        "partitions": len(parts),
        "partition_rows": parts["partition_rows"].astype(int).tolist(),
        "partition_seconds": parts["partition_seconds"].astype(float).tolist(),
    }


def _second_stage(job: QueryJob, plan: Plan, candidates: pa.Table, pool_rows: int) -> Selection:
    positions = candidates.column("position").to_numpy()
    ids = candidates.column("item_id").combine_chunks()
    if plan.keep is not None:
        scores = candidates.column("score").to_numpy(zero_copy_only=False)
        kept = top_k(scores, plan.keep, index=positions)
    else:
        kept = np.arange(positions.shape[0])
    if not plan.second_stage:
        # The kept candidates are the queue, best first; a pool smaller than the queue warns
        # as the local sampler does.
        effective_batch_size(job.params.queue_size, pool_rows, type(job.sampler).__name__)
        return Selection(ids.take(pa.array(kept, pa.int64())).to_pylist(), scores[kept], pool_rows)
    # The sampler sees the candidates in global order, so its own tie-breaks (earlier row
    # first) are the local engine's.
    kept = kept[np.argsort(positions[kept], kind="stable")]
    taken = pa.array(kept, pa.int64())
    rows = candidates.column("row").take(taken).to_pylist()
    dtype = np.dtype(candidates.column("row_dtype").take(taken)[0].as_py())
    X = np.frombuffer(b"".join(rows), dtype=dtype).reshape(len(rows), -1)
    chosen, chosen_scores = job.sampler.select_with_scores(X)
    chosen = kept[np.asarray(chosen, dtype=np.int64)]
    return Selection(ids.take(pa.array(chosen, pa.int64())).to_pylist(), chosen_scores, pool_rows)
