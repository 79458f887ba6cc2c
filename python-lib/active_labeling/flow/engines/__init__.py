"""Where the query sampler scores a pool: here (``local``), on Dask, or on Spark.

``local`` streams the pool from the store in this process. ``dask`` and ``spark`` read the
pool in place from Parquet on their workers, score each partition and keep its best
candidates, and merge them on the driver with the local tie-break (the earlier row wins).
All of them return a :class:`Selection`; the query sampler writes it as a queue generation.
"""

from __future__ import annotations

from active_labeling.flow.engines.base import (
    SCORED_STRATEGIES,
    QueryEngine,
    QueryJob,
    Selection,
    model_input,
)
from active_labeling.flow.engines.local import LocalEngine

#: The values of the recipe's ``engine`` param.
ENGINES = ("local", "dask", "spark")


def make_engine(params) -> QueryEngine:
    """The engine that ``params`` (``QuerySamplerParams``) asks for.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> make_engine(SimpleNamespace(engine="local")).name
    'local'
    >>> make_engine(SimpleNamespace(engine="dask", dask_scheduler="tcp://h:8786")).scheduler
    'tcp://h:8786'
    """
    if params.engine == "dask":
        from active_labeling.flow.engines.dask import DaskEngine

        return DaskEngine(params.dask_scheduler)
    if params.engine == "spark":
        from active_labeling.flow.engines.spark import SparkEngine

        return SparkEngine(params.spark_master)
    return LocalEngine()


__all__ = [
    "ENGINES",
    "SCORED_STRATEGIES",
    "LocalEngine",
    "QueryEngine",
    "QueryJob",
    "Selection",
    "make_engine",
    "model_input",
]
