"""A pool as Parquet files read in place by the workers, each row with its global position.

Engines read the pool where it lies, never through the store: the driver only describes it
(the files, in the order the store reads them, their row groups, how an item id is made).
A row's *global position* is its place in the store's read order (the files one after the
other, rows in file order); ties between equal scores go to the smaller position, as in the
local engine. A dataset copied into the store (a table) is first exported to a temporary
Parquet file beside the project, removed after the run.

Item ids follow the store's rules exactly (``store.datasets``): the id column as text, or
the 1-based row number in the file, prefixed by the file name when there are several files.
"""

from __future__ import annotations

import glob as globbing
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from active_labeling.errors import InputError
from active_labeling.store.connection import quote_identifier
from active_labeling.store.datasets import count_rows, require_dataset

#: The id column of a table exported for an engine.
EXPORTED_ID_COLUMN = "item_id"


@dataclass(frozen=True)
class Unit:
    """Consecutive row groups of one file: what one Dask task reads."""

    file_index: int
    row_groups: tuple[int, ...]
    first_row: int
    rows: int


@dataclass(frozen=True)
class ParquetPool:
    """The pool's Parquet files, in the store's read order, and how ids are made.

    Examples
    --------
    >>> pool = ParquetPool("d", ("/data/a.parquet", "/data/b.parquet"), ((3,), (2, 2)),
    ...                    ("x",), None)
    >>> pool.offsets.tolist(), pool.total_rows
    ([0, 3], 7)
    >>> pool.item_ids(np.array([0, 1]), np.array([2, 3])).to_pylist()
    ['a.parquet:3', 'b.parquet:4']
    >>> pool.positions_of(["b.parquet:1", "a.parquet:1", "nope"]).tolist()
    [0, 3]
    """

    dataset: str
    files: tuple[str, ...]
    row_groups: tuple[tuple[int, ...], ...]
    columns: tuple[str, ...]
    id_column: str | None

    @property
    def file_rows(self) -> np.ndarray:
        return np.array([sum(groups) for groups in self.row_groups], dtype=np.int64)

    @property
    def offsets(self) -> np.ndarray:
        """The global position of each file's first row."""
        rows = self.file_rows
        return np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)

    @property
    def total_rows(self) -> int:
        return int(self.file_rows.sum())

    @property
    def read_columns(self) -> list[str]:
        """The columns a worker reads: the features, and the id column if there is one."""
        extra = [self.id_column] if self.id_column and self.id_column not in self.columns else []
        return [*self.columns, *extra]

    def file_names(self) -> list[str]:
        return [os.path.basename(f) for f in self.files]

    def item_ids(
        self, file_index: np.ndarray, rows: np.ndarray, id_values: pa.Array | None = None
    ) -> pa.Array:
        """The item ids of rows given by file and row in file (or by their id column)."""
        if self.id_column is not None:
            return pc.cast(id_values, pa.string())
        numbers = pc.cast(pa.array(np.asarray(rows, dtype=np.int64) + 1), pa.string())
        if len(self.files) == 1:
            return numbers
        names = pa.array(self.file_names(), pa.string()).take(pa.array(file_index))
        return pc.binary_join_element_wise(names, numbers, ":")

    def positions_of(self, item_ids) -> np.ndarray:
        """Sorted global positions of the given ids (ids made from positions only).

        Ids that name no row of the pool are left out.
        """
        offsets, file_rows = self.offsets, self.file_rows
        by_name = {name: i for i, name in enumerate(self.file_names())}
        positions = []
        for item_id in item_ids:
            if len(self.files) == 1:
                name, number = None, item_id
            else:
                name, _, number = str(item_id).rpartition(":")
            file = 0 if name is None else by_name.get(name)
            try:
                row = int(number) - 1
            except ValueError:
                continue
            if file is not None and 0 <= row < file_rows[file]:
                positions.append(offsets[file] + row)
        return np.unique(np.array(positions, dtype=np.int64))

    def units(self, max_rows: int) -> list[Unit]:
        """Runs of consecutive row groups of a file, each of at most ``max_rows`` rows
        (or one row group, if larger)."""
        units = []
        for f, groups in enumerate(self.row_groups):
            start, first_row, rows = 0, 0, 0
            for g, size in enumerate(groups):
                if rows and rows + size > max_rows:
                    units.append(Unit(f, tuple(range(start, g)), first_row, rows))
                    start, first_row, rows = g, first_row + rows, 0
                rows += size
            if rows:
                units.append(Unit(f, tuple(range(start, len(groups))), first_row, rows))
        return units

    def read_unit(self, unit: Unit, batch_rows: int) -> Iterator[tuple[pa.RecordBatch, int]]:
        """The unit's rows in batches, each with the row-in-file of its first row."""
        handle = pq.ParquetFile(self.files[unit.file_index])
        row = unit.first_row
        for batch in handle.iter_batches(
            batch_size=batch_rows, row_groups=list(unit.row_groups), columns=self.read_columns
        ):
            yield batch, row
            row += batch.num_rows


@dataclass(frozen=True)
class LabeledFilter:
    """The labeled rows to leave out: by global position (ids made from positions) or by id."""

    positions: np.ndarray | None = None
    ids: pa.Array | None = None

    def unlabeled(self, positions: np.ndarray, ids: pa.Array | None) -> np.ndarray:
        """A mask of the rows that are not labeled."""
        if self.ids is not None and len(self.ids):
            return ~pc.is_in(ids, self.ids).to_numpy(zero_copy_only=False)
        if self.positions is not None and len(self.positions):
            where = np.searchsorted(self.positions, positions)
            where[where == len(self.positions)] = 0
            return self.positions[where] != positions
        return np.ones(len(positions), dtype=bool)


def labeled_filter(pool: ParquetPool, labeled_ids: pa.Array) -> LabeledFilter:
    if pool.id_column is None:
        return LabeledFilter(positions=pool.positions_of(labeled_ids.to_pylist()))
    return LabeledFilter(ids=labeled_ids.cast(pa.string()))


def describe_files(
    dataset: str, files: list[str], columns: list[str], id_column: str | None
) -> ParquetPool:
    """A :class:`ParquetPool` over ``files`` (in read order), from their footers."""
    row_groups = []
    for path in files:
        try:
            meta = pq.ParquetFile(path).metadata
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(
                f"dataset {dataset!r}: {path} is not a readable Parquet file: {exc}"
            ) from None
        row_groups.append(tuple(meta.row_group(g).num_rows for g in range(meta.num_row_groups)))
    if id_column is not None:
        kind = pq.read_schema(files[0]).field(id_column).type
        if not (
            pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
        ):
            raise InputError(
                f"dataset {dataset!r}: id column {id_column!r} is {kind}; the dask and spark "
                "engines take integer or text ids only (other types print differently than "
                "in the store): use engine 'local', or re-import with an integer or text id"
            )
    names = [os.path.basename(f) for f in files]
    if id_column is None and len(files) > 1 and len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise InputError(
            f"dataset {dataset!r}: two of its Parquet files are named {twice!r}, so their "
            "item ids collide; give the files distinct names or an id column"
        )
    return ParquetPool(dataset, tuple(files), tuple(row_groups), tuple(columns), id_column)


def _registered_files(project, dataset: str) -> list[str]:
    """The files of a dataset registered in place, by the rule ``register_parquet`` used."""
    pattern = os.path.expanduser(project.dataset(dataset).source)
    files = sorted(globbing.glob(pattern))
    if not files and not os.path.isabs(pattern):
        files = sorted(globbing.glob(str(project.root / pattern)))
    if not files:
        raise InputError(
            f"dataset {dataset!r}: its Parquet files {pattern!r} are not found (from "
            f"{os.getcwd()}); register them again with an absolute path"
        )
    return [str(Path(f).resolve()) for f in files]


@contextmanager
def open_pool(con, project, dataset: str, columns: list[str], row_group_rows: int):
    """The dataset as a :class:`ParquetPool`: its own files, or a temporary export.

    A table is exported (item id and feature columns, in stored order) to
    ``<project>/exports/.engine-*/pool.parquet`` in row groups of ``row_group_rows``; the
    folder is removed on exit. Workers must see the project folder to read it.
    """
    entry = project.dataset(dataset)
    relation = require_dataset(con, dataset)
    if entry.kind == "parquet":
        pool = describe_files(
            dataset, _registered_files(project, dataset), columns, entry.id_column
        )
        stored = count_rows(con, dataset)
        if pool.total_rows != stored:
            raise InputError(
                f"dataset {dataset!r}: its Parquet files hold {pool.total_rows} rows but the "
                f"store reads {stored}; the files changed since they were registered: "
                "register them again"
            )
        yield pool
        return
    # Absolute: the workers' working directory is not this one.
    exports = project.exports_dir.resolve()
    exports.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".engine-", dir=exports))
    try:
        path = folder / "pool.parquet"
        selected = ", ".join(["item_id", *(quote_identifier(c) for c in columns)])
        escaped = str(path).replace("'", "''")
        con.execute(
            f"COPY (SELECT {selected} FROM {relation}) TO '{escaped}' "
            f"(FORMAT parquet, ROW_GROUP_SIZE {int(row_group_rows)})"
        )
        yield describe_files(dataset, [str(path)], columns, EXPORTED_ID_COLUMN)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
