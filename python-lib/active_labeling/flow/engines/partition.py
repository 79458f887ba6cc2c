"""The work of one partition, on a worker: score its rows, keep its best candidates.

What runs here is the same whatever the engine: Dask hands a partition's batches read with
pyarrow, Spark the batches of ``mapInArrow``. Each partition returns a small Arrow table of
candidates (:data:`CANDIDATES`): global position, item id, score, and the row in the model's
feature space when the driver needs it (in its own dtype).

The saved model travels as the bytes of its ``model.skops`` file and is loaded here with the
same checks as ``load_model`` (skops' trusted types, then the estimator allowlist), once
per worker process. Nothing here unpickles user data.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from active_labeling.flow.engines.base import FITTED_ON_LABELS, model_input
from active_labeling.flow.engines.pool import LabeledFilter, ParquetPool
from active_labeling.flow.feature_checks import check_batch_no_infinity
from active_labeling.samplers.badge import gradient_embedding
from active_labeling.samplers.base import is_multilabel_model, top_k
from active_labeling.samplers.kcenter import KCenterGreedySampler
from active_labeling.samplers.registry import make_sampler, needs_classifier

#: The schema of a partition's candidates, the same from every engine.
CANDIDATES = pa.schema(
    [
        ("partition", pa.int32()),
        ("partition_rows", pa.int64()),  # unlabeled rows the partition scored
        ("partition_seconds", pa.float64()),
        ("position", pa.int64()),
        ("item_id", pa.string()),
        ("score", pa.float64()),
        # The row in the model's feature space, as the bytes of its own dtype (``row_dtype``):
        # the driver's second stage must see the very values the local engine sees.
        ("row", pa.binary()),
        ("row_dtype", pa.string()),
    ]
)

#: Spark's DDL for the same schema.
CANDIDATES_DDL = (
    "partition int, partition_rows long, partition_seconds double, position long, "
    "item_id string, score double, row binary, row_dtype string"
)


@dataclass(frozen=True)
class PartitionTask:
    """What each partition computes; small, the same for every partition.

    ``mode`` is ``top`` (keep the ``k`` best rows by ``score``) or ``kcenter`` (keep ``k``
    rows by k-center greedy on the partition). ``score`` is ``strategy`` (the sampler's own
    score), ``random`` (a uniform key per global position), ``gradient_norm`` (BADGE's
    gradient-embedding norm) or ``none`` (k-center).
    """

    strategy: str
    strategy_params: tuple[tuple[str, object], ...]
    queue_size: int
    random_state: int
    feature_space: bool
    mode: Literal["top", "kcenter"]
    score: Literal["strategy", "random", "gradient_norm", "none"]
    k: int
    keep_rows: bool
    chunk_size: int

    def key(self, model_digest: str) -> str:
        return hashlib.sha256(f"{model_digest}|{self!r}".encode()).hexdigest()


@dataclass(frozen=True)
class SharedData:
    """What every partition needs, sent to the workers once (broadcast)."""

    pool: ParquetPool
    model: bytes
    model_digest: str
    labeled: LabeledFilter
    labeled_frame: pd.DataFrame | None  # for the committee's refit and k-center's seeds
    labels: np.ndarray | None


# --- the model on a worker --------------------------------------------------------------------


def load_pipeline(data: bytes):
    """A saved pipeline from the bytes of its ``model.skops``, with ``load_model``'s checks.

    Raises
    ------
    InputError
        The bytes are not a skops file, or hold a type or estimator this project never saves.
    """
    from active_labeling.models.saved import MODEL_FILE, _read_pipeline

    with tempfile.TemporaryDirectory(prefix="active-labeling-model-") as folder:
        path = Path(folder) / MODEL_FILE
        path.write_bytes(data)
        # The private reader is load_model's own: the same two allowlists, one place.
        return _read_pipeline(path)


class _Scorer:
    """A partition's scorer, built once per worker process and task."""

    def __init__(self, task: PartitionTask, shared: SharedData):
        self.task = task
        self.pipeline = load_pipeline(shared.model)
        classifier = self.pipeline[-1] if task.feature_space else self.pipeline
        self.classifier = classifier
        self.sampler = None
        if task.score == "strategy":
            self.sampler = make_sampler(
                task.strategy,
                classifier=classifier if needs_classifier(task.strategy) else None,
                batch_size=task.queue_size,
                random_state=task.random_state,
                **dict(task.strategy_params),
            )
            if task.strategy in FITTED_ON_LABELS:
                # The committee fits its members (the same seed, the same ones), MMC its
                # label-count model, label cardinality the labeled items' mean.
                frame = shared.labeled_frame
                self.sampler.fit(self.to_input(frame), shared.labels)
            else:
                self.sampler.fit()
        self.labeled_features = None
        if task.mode == "kcenter" and shared.labeled_frame is not None:
            if len(shared.labeled_frame):
                self.labeled_features = np.asarray(
                    model_input(self.pipeline, shared.labeled_frame, True), dtype=np.float64
                )

    def to_input(self, frame: pd.DataFrame):
        return model_input(self.pipeline, frame, self.task.feature_space)

    def score(self, X, positions: np.ndarray) -> np.ndarray:
        kind = self.task.score
        if kind == "random":
            return position_keys(positions, self.task.random_state)
        if kind == "gradient_norm":
            A, H = gradient_embedding(
                self.classifier,
                X,
                multilabel=is_multilabel_model(self.classifier),
                thresholds=dict(self.task.strategy_params).get("thresholds"),
            )
            H = np.asarray(H)
            return np.einsum("ij,ij->i", A, A) * np.einsum("ij,ij->i", H, H)
        return self.sampler.score_samples(X)


_SCORERS: OrderedDict[str, _Scorer] = OrderedDict()
_SCORERS_LOCK = threading.Lock()
_SCORERS_KEPT = 4


def _scorer(task: PartitionTask, shared: SharedData) -> _Scorer:
    key = task.key(shared.model_digest)
    with _SCORERS_LOCK:
        scorer = _SCORERS.get(key)
        if scorer is None:
            scorer = _Scorer(task, shared)
            _SCORERS[key] = scorer
            while len(_SCORERS) > _SCORERS_KEPT:
                _SCORERS.popitem(last=False)
        return scorer


# --- random keys that do not depend on the partitioning ---------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def position_keys(positions: np.ndarray, seed: int) -> np.ndarray:
    """A uniform key in [0, 1) for each global position: a hash of (seed, position).

    Unlike a generator drawn chunk after chunk, the key of a row does not depend on which
    partition holds it, so every engine and every partitioning selects the same rows.

    Examples
    --------
    >>> keys = position_keys(np.arange(5), seed=0)
    >>> bool(((keys >= 0) & (keys < 1)).all()), len(set(keys.tolist()))
    (True, 5)
    >>> np.array_equal(position_keys(np.array([3]), 0), keys[3:4])
    True
    """
    seed_mix = _splitmix64(np.array([int(seed) % 2**64], dtype=np.uint64) + _GOLDEN)[0]
    with np.errstate(over="ignore"):
        z = (np.asarray(positions, dtype=np.int64).astype(np.uint64) + np.uint64(1)) * _GOLDEN
        z = _splitmix64(z ^ seed_mix)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


# --- one partition ----------------------------------------------------------------------------


@dataclass
class _Kept:
    """A partition's best rows so far."""

    positions: np.ndarray
    file_index: np.ndarray
    rows_in_file: np.ndarray
    ids: pa.Array | None
    scores: np.ndarray | None
    features: np.ndarray | None

    def take(self, which: np.ndarray) -> _Kept:
        return _Kept(
            self.positions[which],
            self.file_index[which],
            self.rows_in_file[which],
            None if self.ids is None else self.ids.take(pa.array(which, pa.int64())),
            None if self.scores is None else self.scores[which],
            None if self.features is None else self.features[which],
        )

    @staticmethod
    def concat(parts: list[_Kept]) -> _Kept:
        def cat(values):
            return None if values[0] is None else np.concatenate(values)

        ids = [p.ids for p in parts]
        return _Kept(
            np.concatenate([p.positions for p in parts]),
            np.concatenate([p.file_index for p in parts]),
            np.concatenate([p.rows_in_file for p in parts]),
            None if ids[0] is None else pa.concat_arrays(ids),
            cat([p.scores for p in parts]),
            None if parts[0].features is None else np.vstack([p.features for p in parts]),
        )


def score_partition(
    task: PartitionTask,
    shared: SharedData,
    batches: Iterable[tuple[pa.RecordBatch, np.ndarray, np.ndarray]],
    partition: int,
) -> pa.Table:
    """Score one partition and return its candidates (:data:`CANDIDATES`).

    ``batches`` yields ``(batch, file_index, row_in_file)``: the pool's read columns and,
    for each row, its file and its row in that file.
    """
    start = time.perf_counter()
    pool = shared.pool
    scorer = _scorer(task, shared)
    offsets = pool.offsets
    id_column = pool.id_column
    kept: _Kept | None = None
    whole: list[_Kept] = []  # k-center: the partition's every unlabeled row
    n_unlabeled = 0
    for batch, file_index, rows_in_file in batches:
        if batch.num_rows == 0:
            continue
        positions = offsets[file_index] + rows_in_file
        ids = batch.column(id_column) if id_column is not None else None
        ids = None if ids is None else pc.cast(ids, pa.string())
        mask = shared.labeled.unlabeled(positions, ids)
        if not mask.all():
            keep = pa.array(mask)
            batch, positions = batch.filter(keep), positions[mask]
            file_index, rows_in_file = file_index[mask], rows_in_file[mask]
            ids = None if ids is None else ids.filter(keep)
        if batch.num_rows == 0:
            continue
        n_unlabeled += batch.num_rows
        features = batch.select(list(pool.columns))
        _check_finite(features, pool, file_index, rows_in_file, ids)
        X = scorer.to_input(features.to_pandas())
        part = _Kept(positions, file_index, rows_in_file, ids, None, None)
        if task.mode == "kcenter":
            part.features = _rows(X, slice(None))
            whole.append(part)
            continue
        part.scores = np.asarray(scorer.score(X, positions), dtype=np.float64)
        best = top_k(part.scores, task.k, index=positions)
        part = part.take(best)
        if task.keep_rows:
            part.features = _rows(X, best)
        if kept is not None:
            part = _Kept.concat([kept, part])
            part = part.take(top_k(part.scores, task.k, index=part.positions))
        kept = part
    if task.mode == "kcenter" and whole:
        kept = _kcenter_candidates(_Kept.concat(whole), task, scorer)
    seconds = time.perf_counter() - start
    return _candidates_table(kept, pool, partition, n_unlabeled, seconds)


def _rows(X, which) -> np.ndarray:
    """Rows of the feature-space input, in their own float dtype (float32 stays float32)."""
    rows = np.asarray(X.iloc[which] if hasattr(X, "iloc") else X[which])
    return rows if rows.dtype.kind == "f" else rows.astype(np.float64)


def _kcenter_candidates(whole: _Kept, task: PartitionTask, scorer: _Scorer) -> _Kept:
    """The partition's ``k`` rows by k-center greedy, seeded with the labeled points."""
    n = whole.positions.shape[0]
    sampler = KCenterGreedySampler(batch_size=min(task.k, n), random_state=task.random_state)
    sampler.fit(scorer.labeled_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        picked = sampler.select_samples(whole.features)
    return whole.take(np.sort(picked))


def _check_finite(features: pa.RecordBatch, pool, file_index, rows_in_file, ids) -> None:
    """Refuse an infinite value naming the item and column, as the local engine does."""
    for column in features.columns:
        if pa.types.is_floating(column.type) and pc.any(pc.is_inf(column)).as_py():
            item_ids = ids if ids is not None else pool.item_ids(file_index, rows_in_file)
            named = pa.RecordBatch.from_arrays(
                [item_ids, *features.columns], names=["item_id", *features.schema.names]
            )
            check_batch_no_infinity(named, pool.dataset)


def _candidates_table(
    kept: _Kept | None, pool: ParquetPool, partition: int, n_unlabeled: int, seconds: float
) -> pa.Table:
    if kept is None:
        return CANDIDATES.empty_table()
    n = kept.positions.shape[0]
    ids = kept.ids if kept.ids is not None else pool.item_ids(kept.file_index, kept.rows_in_file)
    if kept.features is not None:
        features = np.ascontiguousarray(kept.features)
        rows = pa.array([row.tobytes() for row in features], pa.binary())
        dtypes = pa.array([features.dtype.str] * n, pa.string())
    else:
        rows = pa.nulls(n, pa.binary())
        dtypes = pa.nulls(n, pa.string())
    return pa.table(
        [
            pa.array(np.full(n, partition, dtype=np.int32)),
            pa.array(np.full(n, n_unlabeled, dtype=np.int64)),
            pa.array(np.full(n, seconds)),
            pa.array(kept.positions, pa.int64()),
            ids.cast(pa.string()),
            pa.array(kept.scores, pa.float64())
            if kept.scores is not None
            else pa.nulls(n, pa.float64()),
            rows,
            dtypes,
        ],
        schema=CANDIDATES,
    )
