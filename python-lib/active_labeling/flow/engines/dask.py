"""The Dask engine: partitions scored by the workers of a ``dask.distributed`` cluster.

A partition is a run of consecutive row groups of one Parquet file (at most
``partition_rows`` rows, or one row group if larger). Each worker reads its partitions in
place with pyarrow, batch by batch, and returns only their candidates. The pool is not
read with ``dask.dataframe.read_parquet``: its partitions may fuse or split row groups, and
the engine needs each row's place in its file (for the tie-break and the item ids), which
the Parquet footers give exactly for row groups.

With a scheduler address the engine connects to that cluster; without one it starts a
local cluster (one single-threaded worker process per core) for the run.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa

from active_labeling.errors import InputError
from active_labeling.flow.engines.partition import PartitionTask, SharedData, score_partition
from active_labeling.flow.engines.partitioned import PartitionedEngine
from active_labeling.flow.engines.pool import ParquetPool, Unit

#: Rows of a partition at most (a larger row group is a partition of its own).
PARTITION_ROWS = 1_000_000


def _score_unit(
    index: int, unit: Unit, task: PartitionTask, shared: SharedData
) -> pa.Table:  # runs on a worker
    def batches():
        for batch, first_row in shared.pool.read_unit(unit, task.chunk_size):
            n = batch.num_rows
            yield (
                batch,
                np.full(n, unit.file_index, dtype=np.int64),
                np.arange(first_row, first_row + n, dtype=np.int64),
            )

    return score_partition(task, shared, batches(), index)


@contextmanager
def _file_less_main() -> Iterator[None]:
    """Hide ``__main__``'s file while worker processes are spawned.

    The host runs ``recipe.py`` as ``__main__`` (``runpy``); a spawned process imports the
    main module's file again, which would run the recipe in every worker. A file-less
    ``__main__`` is not imported again.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


class DaskEngine(PartitionedEngine):
    """Score the pool on a Dask cluster.

    Parameters
    ----------
    scheduler : str, optional
        The scheduler's address (``tcp://host:8786``); None starts a local cluster.
    client : distributed.Client, optional
        A client to use as is (left open); takes precedence over ``scheduler``.
    n_workers : int, optional
        Workers of a local cluster; default one per core.
    partition_rows : int, default=PARTITION_ROWS
        Rows of a partition at most.
    """

    name = "dask"

    def __init__(
        self,
        scheduler: str | None = None,
        *,
        client=None,
        n_workers: int | None = None,
        partition_rows: int = PARTITION_ROWS,
    ):
        self.scheduler = scheduler
        self.client = client
        self.n_workers = n_workers
        self.partition_rows = partition_rows

    @contextmanager
    def _connected(self) -> Iterator:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InputError(
                "engine 'dask' needs dask.distributed: pip install 'active-labeling[dask]'"
            ) from None
        if self.client is not None:
            yield self.client
            return
        if self.scheduler:
            try:
                client = Client(self.scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise InputError(
                    f"dask_scheduler {self.scheduler!r}: cannot connect ({exc})"
                ) from None
            try:
                yield client
            finally:
                client.close()
            return
        with _file_less_main():
            cluster = LocalCluster(
                n_workers=self.n_workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()

    def run_partitions(
        self,
        pool: ParquetPool,
        task: PartitionTask,
        shared: SharedData,
        progress: Callable[[int], None] | None,
    ) -> list[pa.Table]:
        from distributed import as_completed

        units = pool.units(self.partition_rows)
        with self._connected() as client:
            # Sent once to each worker, not once per task: the model and the labeled rows.
            shared_future = client.scatter(shared, broadcast=True, hash=False)
            futures = client.map(
                _score_unit,
                range(len(units)),
                units,
                task=task,
                shared=shared_future,
                pure=False,
            )
            rows = {future.key: unit.rows for future, unit in zip(futures, units, strict=True)}
            tables = []
            try:
                for future in as_completed(futures):
                    tables.append(future.result())
                    if progress:
                        progress(rows[future.key])
            finally:
                client.cancel(futures)
                client.cancel(shared_future)
        return tables
