"""The local engine: the pool streams from the store in chunks, in this process.

Items already labeled are left out; scored strategies keep only the best rows, so memory is
bounded by the chunk size. Strategies that compare rows with each other (k-center, k-means,
BADGE, TypiClust) need the whole pool in the model's feature space, so their memory grows
with the pool.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from active_labeling.flow.engines.base import QueryEngine, QueryJob, Selection, nothing_to_queue
from active_labeling.flow.feature_checks import check_batch_no_infinity
from active_labeling.samplers import ScoredSampler
from active_labeling.store.datasets import iter_batches


class LocalEngine(QueryEngine):
    """Stream the pool from the store in chunks of ``params.chunk_size`` rows."""

    name = "local"

    def select(self, job: QueryJob) -> Selection:
        labeled = job.labeled_ids
        pool_ids: list[pa.Array] = []

        def chunks() -> Iterator:
            batches = iter_batches(
                job.con, job.dataset, job.columns, batch_rows=job.params.chunk_size
            )
            for batch in batches:
                # Rows read, labeled ones included: the bar's total is the dataset's rows.
                if job.progress:
                    job.progress(batch.num_rows)
                if len(labeled):
                    batch = batch.filter(pc.invert(pc.is_in(batch.column("item_id"), labeled)))
                if batch.num_rows == 0:
                    continue
                check_batch_no_infinity(batch, job.dataset)
                pool_ids.append(batch.column("item_id"))
                yield job.model_input(batch.drop_columns(["item_id"]).to_pandas())

        sampler = job.sampler
        if isinstance(sampler, ScoredSampler):
            stream = chunks()
            first = next(stream, None)
            if first is None:
                raise nothing_to_queue(job.dataset)
            positions, scores = sampler.select_with_scores(_prepend(first, stream))
        else:  # needs the whole pool, which only feature-space strategies do (dense arrays)
            whole = list(chunks())
            if not whole:
                raise nothing_to_queue(job.dataset)
            positions, scores = sampler.select_with_scores(np.vstack(whole))
        ids = pa.chunked_array(pool_ids).take(pa.array(positions, pa.int64()))
        return Selection(
            item_ids=ids.to_pylist(),
            scores=scores,
            pool_rows=int(sum(len(chunk) for chunk in pool_ids)),
        )


def _prepend(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest
