"""Queue generations: each run of the query sampler adds one; none is ever rewritten.

The labeling app hands out items of the latest generation of a queue, best rank first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from active_labeling.store.connection import transaction
from active_labeling.store.datasets import copy_query_to_file

_ITEM_COLUMNS = "generation_id, item_id, score, rank, strategy, model_version, created_at"


@dataclass(frozen=True)
class QueueGeneration:
    generation_id: int
    queue: str
    dataset: str
    strategy: str
    model_name: str | None
    model_version: str | None
    pool_rows: int
    n_items: int
    created_at: datetime


def write_generation(
    con: duckdb.DuckDBPyConnection,
    *,
    queue: str,
    dataset: str,
    item_ids: list[str] | pa.Array,
    scores,
    strategy: str,
    model_name: str | None,
    model_version: str | None,
    params: dict,
    pool_rows: int,
) -> QueueGeneration:
    """Append a generation: ``item_ids`` in rank order (rank 1 first), in one transaction."""
    created_at = datetime.now(timezone.utc)
    n = len(item_ids)
    table = pa.table(
        {
            "item_id": pa.array(item_ids, pa.string()),
            "score": pa.array(scores if scores is not None else [None] * n, pa.float64()),
            "rank": pa.array(range(1, n + 1), pa.int32()),
        }
    )
    with transaction(con):
        generation_id = con.execute("SELECT nextval('queue_generation_ids')").fetchone()[0]
        con.execute(
            "INSERT INTO queue_generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                generation_id,
                queue,
                dataset,
                strategy,
                model_name,
                model_version,
                json.dumps(params, sort_keys=True, default=str),
                pool_rows,
                n,
                created_at,
            ],
        )
        con.register("_incoming_queue", table)
        con.execute(
            "INSERT INTO queue SELECT ?, item_id, score, rank, ?, ?, ? FROM _incoming_queue",
            [generation_id, strategy, model_version, created_at],
        )
        con.unregister("_incoming_queue")
    return QueueGeneration(
        generation_id,
        queue,
        dataset,
        strategy,
        model_name,
        model_version,
        pool_rows,
        n,
        created_at,
    )


def queue_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The queues that have at least one generation, by name."""
    rows = con.execute("SELECT DISTINCT queue FROM queue_generations ORDER BY queue").fetchall()
    return [row[0] for row in rows]


def latest_generation(con: duckdb.DuckDBPyConnection, queue: str) -> int | None:
    row = con.execute(
        "SELECT max(generation_id) FROM queue_generations WHERE queue = ?", [queue]
    ).fetchone()
    return row[0]


def generation_items(con: duckdb.DuckDBPyConnection, generation_id: int) -> pd.DataFrame:
    """The items of one generation, best rank first."""
    return con.execute(
        f"SELECT {_ITEM_COLUMNS} FROM queue WHERE generation_id = ? ORDER BY rank",
        [generation_id],
    ).df()


def export_generation(con: duckdb.DuckDBPyConnection, generation_id: int, path: Path) -> Path:
    """Write one generation to Parquet or CSV (atomically)."""
    query = (
        f"SELECT {_ITEM_COLUMNS} FROM queue WHERE generation_id = {int(generation_id)} "
        "ORDER BY rank"
    )
    return copy_query_to_file(con, query, path)
