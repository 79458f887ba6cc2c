"""Queue generations for what the classifier's strategies cannot rank: uncertainties the
user's own model computed (strategy ``precomputed``, any task type), and texts ranked by a
spans model (``models.spans``).

Both stream the unlabeled pool from the store in batches and keep only the best
``queue_size``; both write a generation like every other strategy (``store.queue``), so the
labeling app takes it up at once.
"""

from __future__ import annotations

import heapq
import math
import uuid

from active_labeling.errors import InputError
from active_labeling.store.connection import quote_identifier, transaction
from active_labeling.store.datasets import (
    arrow_batches,
    dataset_schema,
    require_dataset,
    stage_file,
)
from active_labeling.store.queue import export_generation, write_generation

#: Rows per batch read from the pool.
BATCH_ROWS = 20_000
PRECOMPUTED_PARAMS = {"column", "file", "id_column", "score_column"}
#: The spans model's uncertainty for each strategy name of the recipe.
SPANS_STRATEGIES = {"least_confidence": "sequence", "margin": "sequence", "entropy": "entropy"}


#: Items of ``d`` without a current label (one parameter: the dataset).
UNLABELED = (
    "NOT EXISTS (SELECT 1 FROM current_labels c WHERE c.dataset = ? AND c.item_id = d.item_id)"
)


def precomputed_query(con, project, *, dataset: str, queue: str, params, progress=None):
    """Rank the unlabeled items by the uncertainty in ``strategy_params``: ``column`` (a
    numeric column of the dataset) or ``file`` (a CSV or Parquet file with ``id_column``,
    default ``id``, and ``score_column``, default ``uncertainty``). Higher first; ties
    in item order. An item without a number is not ranked."""
    from active_labeling.flow.query_sampler import QueryResult

    options = dict(params.strategy_params)
    unknown = sorted(set(options) - PRECOMPUTED_PARAMS)
    if unknown:
        raise InputError(
            f"strategy_params: precomputed takes {', '.join(sorted(PRECOMPUTED_PARAMS))}, "
            f"not {unknown[0]!r}"
        )
    if ("column" in options) == ("file" in options):
        raise InputError(
            "strategy_params: precomputed needs either 'column' (a column of the dataset) or "
            "'file' (a CSV or Parquet file of item ids and uncertainties)"
        )
    relation = require_dataset(con, dataset)
    staging = quote_identifier(f"_staging_uncertainty_{uuid.uuid4().hex[:8]}")
    with transaction(con):
        if "column" in options:
            column = options["column"]
            types = dict(dataset_schema(con, dataset))
            if column not in types:
                raise InputError(
                    f"strategy_params.column: dataset {dataset!r} has no column {column!r}"
                )
            value = f"TRY_CAST({quote_identifier(column)} AS DOUBLE)"
            scores = f"(SELECT item_id, {value} AS score FROM {relation})"
            where = f"column {column!r}"
        else:
            staged = stage_file(con, options["file"], staging)
            id_column = options.get("id_column", "id")
            score_column = options.get("score_column", "uncertainty")
            for role, name in (("id_column", id_column), ("score_column", score_column)):
                if name not in staged.columns:
                    raise InputError(
                        f"{staged.path}: no column {name!r} (strategy_params.{role}); the "
                        f"columns are {', '.join(staged.columns)}"
                    )
            ident = f"CAST({quote_identifier(id_column)} AS VARCHAR)"
            unknown_id = con.execute(
                f"SELECT _row, {ident} FROM {staging} s WHERE NOT EXISTS (SELECT 1 FROM "
                f"{relation} d WHERE d.item_id = {ident}) ORDER BY _row LIMIT 1"
            ).fetchone()
            if unknown_id:
                raise InputError(
                    f"{staged.path} row {unknown_id[0]}: id {unknown_id[1]!r} is not an item of "
                    f"dataset {dataset!r}"
                )
            twice = con.execute(
                f"SELECT _row, {ident} FROM {staging} QUALIFY row_number() OVER "
                f"(PARTITION BY {ident} ORDER BY _row) = 2 ORDER BY _row LIMIT 1"
            ).fetchone()
            if twice:
                raise InputError(f"{staged.path} row {twice[0]}: id {twice[1]!r} appears twice")
            bad = con.execute(
                f"SELECT _row, {quote_identifier(score_column)} FROM {staging} WHERE "
                f"{quote_identifier(score_column)} IS NOT NULL AND (TRY_CAST("
                f"{quote_identifier(score_column)} AS DOUBLE) IS NULL OR NOT isfinite(TRY_CAST("
                f"{quote_identifier(score_column)} AS DOUBLE))) ORDER BY _row LIMIT 1"
            ).fetchone()
            if bad:
                raise InputError(
                    f"{staged.path} row {bad[0]}: uncertainty {bad[1]!r} is not a finite number"
                )
            scores = (
                f"(SELECT {ident} AS item_id, TRY_CAST({quote_identifier(score_column)} AS DOUBLE) "
                f"AS score FROM {staging})"
            )
            where = str(staged.path)
        if "column" in options:
            bad = con.execute(
                f"SELECT item_id, score FROM {scores} WHERE score IS NOT NULL AND NOT "
                "isfinite(score) LIMIT 1"
            ).fetchone()
            if bad:
                raise InputError(
                    f"{where}: item {bad[0]!r} has uncertainty {bad[1]}: it must be finite"
                )
        pool_rows = con.execute(
            f"SELECT count(*) FROM {relation} d WHERE {UNLABELED}", [dataset]
        ).fetchone()[0]
        ranked = con.execute(
            f"SELECT s.item_id, s.score FROM {scores} s JOIN {relation} d ON d.item_id = "
            f"s.item_id WHERE s.score IS NOT NULL AND {UNLABELED} "
            "ORDER BY s.score DESC, s.item_id LIMIT ?",
            [dataset, params.queue_size],
        ).fetchall()
        con.execute(f"DROP TABLE IF EXISTS {staging}")
    if progress:
        progress(pool_rows)
    return _write(
        con,
        project,
        dataset,
        queue,
        ranked,
        "precomputed",
        None,
        None,
        params,
        pool_rows,
        QueryResult,
    )


def spans_query(con, project, *, dataset: str, model: str, queue: str, params, progress=None):
    """Rank the unlabeled texts by how unsure the spans model is of them: 1 - P(best tag
    sequence) for ``least_confidence`` (and ``margin``), the mean token entropy for
    ``entropy``."""
    from active_labeling.flow.query_sampler import QueryResult
    from active_labeling.models.spans import load_spans_model

    if params.strategy not in SPANS_STRATEGIES:
        raise InputError(
            f"strategy {params.strategy!r} needs a classifier; model {model!r} is a spans model: "
            "use least_confidence (1 - the probability of its best tagging), entropy (the "
            "mean token entropy) or precomputed"
        )
    kind = SPANS_STRATEGIES[params.strategy]
    saved = load_spans_model(project.models_dir, model, params.model_version)
    relation = require_dataset(con, dataset)
    column = quote_identifier(saved.meta.text_column)
    best: list[tuple[float, str]] = []  # a min-heap of (score, negated order) of the best
    pool_rows = 0
    cursor = con.cursor()
    try:
        query = (
            f"SELECT d.item_id, d.{column} FROM {relation} d WHERE {UNLABELED} ORDER BY d.item_id"
        )
        for batch in arrow_batches(cursor, query, BATCH_ROWS, [dataset]):
            ids = batch.column(0).to_pylist()
            texts = batch.column(1).to_pylist()
            for item_id, text in zip(ids, texts, strict=True):
                score = saved.uncertainty(text if isinstance(text, str) else "", kind)
                entry = (score, _Reverse(item_id))
                if len(best) < params.queue_size:
                    heapq.heappush(best, entry)
                elif entry > best[0]:
                    heapq.heapreplace(best, entry)
            pool_rows += len(ids)
            if progress:
                progress(len(ids))
    finally:
        cursor.close()
    ranked = [(e[1].value, e[0]) for e in sorted(best, reverse=True)]
    return _write(
        con,
        project,
        dataset,
        queue,
        ranked,
        params.strategy,
        model,
        saved.version,
        params,
        pool_rows,
        QueryResult,
    )


class _Reverse:
    """An item id that sorts backwards: among equal scores the earlier id is the better."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return self.value > other.value

    def __eq__(self, other) -> bool:
        return isinstance(other, _Reverse) and self.value == other.value

    def __hash__(self) -> int:  # pragma: no cover - never hashed
        return hash(self.value)


def _write(
    con, project, dataset, queue, ranked, strategy, model, version, params, pool_rows, result
):
    if not ranked:
        raise InputError(f"dataset {dataset!r} has no unlabeled item with an uncertainty to rank")
    generation = write_generation(
        con,
        queue=queue,
        dataset=dataset,
        item_ids=[r[0] for r in ranked],
        scores=[float(r[1]) if r[1] is not None and math.isfinite(r[1]) else None for r in ranked],
        strategy=strategy,
        model_name=model,
        model_version=version,
        params=params.model_dump(),
        pool_rows=pool_rows,
    )
    path = export_generation(
        con,
        generation.generation_id,
        project.exports_dir / "queues" / queue / f"generation-{generation.generation_id}.parquet",
    )
    return result(generation, path)
