"""The Spark engine: partitions scored by Spark's Python workers with ``mapInArrow``.

The pool is read in place with ``spark.read.parquet``; Spark decides the partitions (file
splits of ``spark.sql.files.maxPartitionBytes``). Each row's place comes from Spark's
hidden ``_metadata.file_path`` and ``_metadata.row_index`` columns, so the tie-break and the
item ids are those of the store whatever the splits. The model's bytes and the labeled rows
are broadcast once.

With a master URL the engine uses that cluster; without one it runs Spark in local mode
(``local[*]``). An active session is used as is and left running. PySpark needs Java on
the driver (17 or later for Spark 4).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from active_labeling import errors
from active_labeling.errors import InputError
from active_labeling.flow.engines.partition import (
    CANDIDATES,
    CANDIDATES_DDL,
    PartitionTask,
    SharedData,
    score_partition,
)
from active_labeling.flow.engines.partitioned import PartitionedEngine
from active_labeling.flow.engines.pool import ParquetPool

_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')
_WORKER_ERROR = re.compile(r"active_labeling\.errors\.(\w+): (.+)")


def java_problem() -> str | None:
    """Why PySpark cannot start a JVM here, or None if it can.

    Examples
    --------
    >>> java_problem() is None or "Java" in java_problem()
    True
    """
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return (
            "Java is not installed (no java on PATH nor JAVA_HOME): PySpark needs a JRE, "
            "for example Debian's default-jre-headless"
        )
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Java at {java} does not run: {exc}"
    found = _JAVA_VERSION.search(out.stderr + out.stdout)
    if not found:
        return f"Java at {java} does not report its version"
    major = int(found.group(1))
    if major == 1:  # "1.8.0" is Java 8
        major = int(found.group(2) or 0)
    needed = 17 if _pyspark_major() >= 4 else 8
    if major < needed:
        return f"Java {major} at {java} is too old: this PySpark needs Java {needed} or later"
    return None


def _pyspark_major() -> int:
    try:
        from pyspark import __version__
    except ImportError:
        return 0
    return int(__version__.split(".")[0])


def _local_path(uri: str) -> str:
    """``file:/a/b%20c.parquet`` -> ``/a/b c.parquet``, the way the pool names files."""
    parsed = urlparse(uri)
    path = unquote(parsed.path) if parsed.scheme in ("file", "") else uri
    return os.path.normpath(path)


def _score_spark_partition(
    batches: Iterator[pa.RecordBatch], *, task: PartitionTask, shared
) -> Iterator[pa.RecordBatch]:  # runs on a Python worker
    from pyspark import TaskContext

    data: SharedData = shared.value
    index_of = {os.path.normpath(path): i for i, path in enumerate(data.pool.files)}
    columns = data.pool.read_columns

    def positioned():
        for batch in batches:
            paths = batch.column("file_path")
            file_index = np.empty(batch.num_rows, dtype=np.int64)
            unique = paths.unique()
            codes = pc.index_in(paths, unique).to_numpy()
            for code, uri in enumerate(unique.to_pylist()):
                file_index[codes == code] = index_of[_local_path(uri)]
            rows = batch.column("row_index").to_numpy().astype(np.int64)
            yield batch.select(columns), file_index, rows

    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    table = score_partition(task, data, positioned(), partition)
    yield from table.to_batches()


class SparkEngine(PartitionedEngine):
    """Score the pool with Spark.

    Parameters
    ----------
    master : str, optional
        The master URL (``spark://host:7077``, ``yarn``, ``local[4]``...); None runs Spark in
        local mode, or uses the active session if there is one.
    session : pyspark.sql.SparkSession, optional
        A session to use as is (left running); takes precedence over ``master``.
    """

    name = "spark"

    def __init__(self, master: str | None = None, *, session=None):
        self.master = master
        self.session = session

    @contextmanager
    def _session(self) -> Iterator:
        if self.session is not None:
            yield self.session
            return
        if self.master and self.master.startswith("sc://"):
            raise InputError(
                f"spark_master {self.master!r}: Spark Connect is not supported (the engine "
                "broadcasts the model through a SparkContext); give a classic master URL"
            )
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise InputError(
                "engine 'spark' needs pyspark: pip install 'active-labeling[spark]'"
            ) from None
        active = SparkSession.getActiveSession()
        if active is not None and self.master in (None, active.sparkContext.master):
            yield active
            return
        problem = java_problem()
        if problem:
            raise InputError(f"engine 'spark': {problem}; or use engine 'dask' or 'local'")
        master = self.master or "local[*]"
        if master.startswith("local"):
            # Spark's own Python workers must be this interpreter, which has the library.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.master(master).appName("active-labeling query-sampler")
        if master.startswith("local"):
            builder = builder.config("spark.ui.enabled", "false")
        session = builder.getOrCreate()
        try:
            yield session
        finally:
            session.stop()

    def run_partitions(
        self,
        pool: ParquetPool,
        task: PartitionTask,
        shared: SharedData,
        progress: Callable[[int], None] | None,
    ) -> list[pa.Table]:
        from pyspark.sql import functions as F

        with self._session() as spark:
            conf = "spark.sql.execution.arrow.maxRecordsPerBatch"
            before = spark.conf.get(conf, None)
            spark.conf.set(conf, str(task.chunk_size))  # batches of chunk_size rows at most
            broadcast = spark.sparkContext.broadcast(shared)
            try:
                frame = spark.read.parquet(*pool.files).select(
                    *[F.col(f"`{c}`") for c in pool.read_columns],
                    F.col("_metadata.file_path").alias("file_path"),
                    F.col("_metadata.row_index").alias("row_index"),
                )
                score = functools.partial(_score_spark_partition, task=task, shared=broadcast)
                table = _collect(frame.mapInArrow(score, CANDIDATES_DDL))
            finally:
                broadcast.destroy()
                if before is None:
                    spark.conf.unset(conf)
                else:
                    spark.conf.set(conf, before)
        if progress:
            progress(pool.total_rows)
        return [table.cast(CANDIDATES)]


def _collect(frame) -> pa.Table:
    """The frame as an Arrow table; an error raised on a worker is raised again here."""
    try:
        if hasattr(frame, "toArrow"):  # PySpark 4
            return frame.toArrow()
        return frame._collect_as_arrow()  # pragma: no cover - PySpark 3.5
    except Exception as exc:
        found = _WORKER_ERROR.search(str(exc))
        if found is None:
            raise
        kind = getattr(errors, found.group(1), errors.ActiveLabelingError)
        raise kind(found.group(2).strip()) from None
