"""Datasets in the store: import from CSV or Parquet, register Parquet in place, read back.

Every dataset has a stable ``item_id`` column, first: the user's id column as text when one
is given (it must be unique and non-null), else the row's 1-based position in the file, so
importing the same file again gives the same ids. Ids are never a hash of the row's values:
duplicate rows stay distinct items.

Files are read in batches and never held whole in memory. An import runs in one
transaction: when anything is wrong, the store is left exactly as it was. An existing
dataset is replaced only when asked (``replace=True``): the new version is built beside the
old, compared with it (``store.replacement``), then swapped in.
"""

from __future__ import annotations

import codecs
import csv
import glob as globbing
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from active_labeling.errors import InputError
from active_labeling.store.connection import quote_identifier, transaction
from active_labeling.store.csv_quotes import find_broken_quote
from active_labeling.store.replacement import Replacement, compare_versions

#: Rows per batch when reading a file.
READ_BATCH_ROWS = 65_536
#: Bytes of CSV text the Arrow reader parses at a time.
CSV_BLOCK_BYTES = 8 << 20
#: Dataset names become table names: keep them plain.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_RESERVED_COLUMNS = {"item_id", "_row"}
#: The file types read and written, by suffix. A ``.txt`` may hold anything: it is refused
#: rather than guessed at.
_CSV_SUFFIXES = (".csv", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def check_dataset_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InputError(
            f"dataset name {name!r} is not valid: start with a letter, then letters, digits, "
            "'-' or '_' (at most 63 characters)"
        )
    return name


def table_of(name: str) -> str:
    """The quoted table (or view) name of a dataset."""
    return quote_identifier(f"dataset_{check_dataset_name(name)}")


@dataclass(frozen=True)
class DatasetInfo:
    """What an import or registration produced."""

    name: str
    rows: int
    columns: list[str]
    id_column: str | None
    kind: str  # "table" (copied into the store) or "parquet" (read in place)
    source: str
    #: What the labels and queues of the dataset it replaced found in it, if it replaced one.
    replaced: Replacement | None = None


# --- reading files ---------------------------------------------------------------------------


def _file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        return "csv"
    if suffix in _PARQUET_SUFFIXES:
        return "parquet"
    accepted = ", ".join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)
    raise InputError(
        f"{path}: unknown file type {suffix or '(no suffix)'!r}; the accepted ones are {accepted}"
    )


def _first_bad_utf8_line(path: Path) -> int:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def _not_text(path: Path, encoding: str) -> InputError:
    return InputError(
        f"{path} is not valid {encoding} text (first bad byte on line "
        f"{_first_bad_utf8_line(path)}): re-save it as UTF-8 or pass --encoding"
    )


def _open_text(path: Path, encoding: str):
    """``path`` opened as text, its line ends kept; a UTF-8 file's BOM is skipped.

    Excel's "CSV UTF-8" starts with a BOM, which would otherwise stick to the first
    column's name as an invisible ``\\ufeff``. (The Arrow reader skips it by itself.)
    """
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(
            f"unknown text encoding {encoding!r}; pass --encoding utf-8, latin-1, cp1252..."
        ) from None
    return open(path, encoding="utf-8-sig" if codec == "utf-8" else encoding, newline="")


def _sniff_csv(path: Path, encoding: str) -> tuple[str, list[str]]:
    """The delimiter and the header of a CSV file."""
    try:
        with _open_text(path, encoding) as handle:
            sample = handle.read(64 * 1024)
    except UnicodeDecodeError:
        raise _not_text(path, encoding) from None
    if not sample.strip():
        raise InputError(f"{path} is empty: expected a header line and rows")
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    header = next(csv.reader([sample.splitlines()[0]], delimiter=delimiter))
    if not any(h.strip() for h in header):
        raise InputError(f"{path}: the first line holds no column names")
    return delimiter, header


def _check_quotes(path: Path, encoding: str, delimiter: str) -> None:
    """Refuse a quote that never closes, or that closes with text after it.

    The Arrow reader would take the rest of the file (or the rows up to the next quote)
    as one value and report nothing: see ``store.csv_quotes``.
    """
    try:
        with _open_text(path, encoding) as handle:
            broken = find_broken_quote(handle, delimiter)
    except UnicodeDecodeError:
        raise _not_text(path, encoding) from None
    if broken is not None:
        raise InputError(broken.message(path))


def _check_columns(path: Path, columns: list[str], id_column: str | None = None) -> None:
    """Every column named, once, and none reserved: ``item_id`` only as the id column (a
    file this tool exported, imported again with ``--id-column item_id``)."""
    seen: set[str] = set()
    for i, column in enumerate(columns, start=1):
        if not column.strip():
            raise InputError(f"{path}: column {i} has no name")
        if column in _RESERVED_COLUMNS and not (column == "item_id" == id_column):
            raise InputError(
                f"{path}: column {column!r} is reserved; rename it, or pass it as --id-column"
                if column == "item_id"
                else f"{path}: column {column!r} is reserved; rename it"
            )
        if column in seen:
            raise InputError(f"{path}: column {column!r} appears twice in the header")
        seen.add(column)


def _kept_columns(columns: list[str], id_column: str | None) -> list[str]:
    """The file's columns a dataset keeps beside ``item_id``: all, but ``item_id`` itself
    when it is the id column (it is the dataset's ``item_id`` then)."""
    return [c for c in columns if not (c == "item_id" == id_column)]


def _csv_batches(
    path: Path, encoding: str, id_column: str | None = None
) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    """The columns and the batches of a CSV file, every column read as text.

    Types are inferred afterwards over the whole file (not from its first block), so a
    column that turns out to hold text on row 900,000 is not an error.
    """
    delimiter, header = _sniff_csv(path, encoding)
    _check_columns(path, header, id_column)
    _check_quotes(path, encoding, delimiter)
    bad_rows: list = []

    def on_invalid_row(row):
        bad_rows.append(row)
        return "error"

    def batches():
        try:
            reader = pa_csv.open_csv(
                path,
                read_options=pa_csv.ReadOptions(
                    use_threads=False, encoding=encoding, block_size=CSV_BLOCK_BYTES
                ),
                # Quoted values may hold line breaks, also where a block ends.
                parse_options=pa_csv.ParseOptions(
                    delimiter=delimiter,
                    newlines_in_values=True,
                    invalid_row_handler=on_invalid_row,
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    strings_can_be_null=True,
                ),
            )
            yield from reader
        except pa.ArrowInvalid as exc:
            if bad_rows:
                row = bad_rows[0]
                raise InputError(
                    f"{path} line {row.number}: expected {row.expected_columns} fields, "
                    f"found {row.actual_columns}: {row.text[:200]!r}"
                ) from None
            if "UTF8" in str(exc) or "utf-8" in str(exc).lower():
                raise InputError(
                    f"{path} is not valid UTF-8 text (first bad byte on line "
                    f"{_first_bad_utf8_line(path)}): re-save it as UTF-8 or pass --encoding"
                ) from None
            raise InputError(f"{path}: {exc}") from None

    return header, batches()


def _parquet_batches(
    path: Path, id_column: str | None = None
) -> tuple[list[str], int, Iterator[pa.RecordBatch]]:
    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path} is not a readable Parquet file: {exc}") from None
    columns = handle.schema_arrow.names
    _check_columns(path, columns, id_column)
    return columns, handle.metadata.num_rows, handle.iter_batches(batch_size=READ_BATCH_ROWS)


# --- importing -------------------------------------------------------------------------------

#: Text columns of a CSV become the first of these types that every value matches. DuckDB's
#: casts alone are too lenient ('41.5' casts to BIGINT 42, 'yes' to BOOLEAN), hence patterns.
_INFERRED_TYPES = {
    "BIGINT": "regexp_full_match(trim({q}), '[+-]?[0-9]{{1,18}}')",
    "DOUBLE": "TRY_CAST(trim({q}) AS DOUBLE) IS NOT NULL",
    "BOOLEAN": "lower(trim({q})) IN ('true', 'false')",
}


def _infer_csv_types(con, staging: str, columns: list[str]) -> dict[str, str]:
    checks = []
    for column in columns:
        q = quote_identifier(column)
        for matches in _INFERRED_TYPES.values():
            checks.append(
                f"count(*) FILTER (WHERE {q} IS NOT NULL AND NOT ({matches.format(q=q)}))"
            )
        checks.append(f"count({q})")
    counts = con.execute(f"SELECT {', '.join(checks)} FROM {staging}").fetchone()
    types = {}
    per_column = len(_INFERRED_TYPES) + 1
    for i, column in enumerate(columns):
        failures = counts[i * per_column : i * per_column + len(_INFERRED_TYPES)]
        non_null = counts[i * per_column + len(_INFERRED_TYPES)]
        types[column] = "VARCHAR"
        if non_null:
            for sql_type, failed in zip(_INFERRED_TYPES, failures, strict=True):
                if failed == 0:
                    types[column] = sql_type
                    break
    return types


def _check_id_column(con, relation: str, id_column: str, source: Path | str, row_expr: str):
    q = quote_identifier(id_column)
    null_row = con.execute(f"SELECT min({row_expr}) FROM {relation} WHERE {q} IS NULL").fetchone()[
        0
    ]
    if null_row is not None:
        raise InputError(
            f"{source}: id column {id_column!r} is empty on row {null_row}; ids must be "
            "non-null and unique"
        )
    duplicate = con.execute(
        f"""
        SELECT CAST({q} AS VARCHAR) AS id, {row_expr} AS row_number
        FROM {relation}
        QUALIFY row_number() OVER (PARTITION BY CAST({q} AS VARCHAR) ORDER BY {row_expr}) = 2
        ORDER BY row_number
        LIMIT 1
        """
    ).fetchone()
    if duplicate is not None:
        raise InputError(
            f"{source}: id column {id_column!r} holds {duplicate[0]!r} more than once "
            f"(again on row {duplicate[1]}); ids must be unique"
        )


@dataclass(frozen=True)
class StagedFile:
    """A file copied as is into a staging table, with its 1-based row positions in ``_row``."""

    path: Path
    format: str
    columns: list[str]
    rows: int


def stage_file(
    con: duckdb.DuckDBPyConnection,
    path: Path | str,
    staging: str,
    *,
    encoding: str = "utf-8",
    progress: Callable[[int], None] | None = None,
    id_column: str | None = None,
) -> StagedFile:
    """Copy a CSV or Parquet file into the table ``staging`` (quoted), batch by batch.

    CSV columns stay text here; the caller decides their types. ``id_column``: the file's
    id column, which may be ``item_id`` (the column every export of this tool starts with).
    Call inside a transaction.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    fmt = _file_format(path)
    if fmt == "csv":
        columns, batches = _csv_batches(path, encoding, id_column)
    else:
        columns, _, batches = _parquet_batches(path, id_column)
    rows = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        positions = pa.array(range(rows + 1, rows + batch.num_rows + 1), pa.int64())
        batch = pa.RecordBatch.from_arrays(
            [*batch.columns, positions], names=[*batch.schema.names, "_row"]
        )
        con.register("_incoming", batch)
        if rows == 0:
            con.execute(f"CREATE OR REPLACE TABLE {staging} AS SELECT * FROM _incoming")
        else:
            con.execute(f"INSERT INTO {staging} SELECT * FROM _incoming")
        con.unregister("_incoming")
        rows += batch.num_rows
        if progress:
            progress(batch.num_rows)
    if rows == 0:
        raise InputError(f"{path} has a header but no rows")
    return StagedFile(path, fmt, columns, rows)


def import_file(
    con: duckdb.DuckDBPyConnection,
    name: str,
    path: Path | str,
    *,
    id_column: str | None = None,
    encoding: str = "utf-8",
    progress: Callable[[int], None] | None = None,
    replace: bool = False,
) -> DatasetInfo:
    """Copy a CSV or Parquet file into the store as dataset ``name``.

    Parameters
    ----------
    con : DuckDB connection to the store
    name : str
        Dataset name: a letter, then letters, digits, ``-`` or ``_``.
    path : path of a ``.csv``/``.tsv`` or ``.parquet``/``.pq`` file
    id_column : str, optional
        A column of unique, non-null ids to keep as ``item_id``; without one, ids are the
        1-based row positions in the file.
    encoding : str, default="utf-8"
        Text encoding of a CSV file.
    progress : callable, optional
        Called with the number of rows of each batch read.
    replace : bool, default=False
        Replace dataset ``name`` if it exists (else that is an error). Its labels and queue
        items keep pointing at ids: ``DatasetInfo.replaced`` says how many lost their row.
    """
    check_dataset_name(name)
    path = Path(path)
    if path.is_file() and _file_format(path) == "parquet":
        return _import_parquet(
            con, name, path, id_column=id_column, progress=progress, replace=replace
        )
    staging = quote_identifier(f"_staging_{name}")
    with transaction(con):
        _check_replaceable(con, name, replace)
        staged = stage_file(
            con, path, staging, encoding=encoding, progress=progress, id_column=id_column
        )
        columns = staged.columns
        if id_column is not None:
            if id_column not in columns:
                raise InputError(
                    f"{staged.path}: no id column {id_column!r}; the columns are "
                    f"{', '.join(columns)}"
                )
            _check_id_column(con, staging, id_column, staged.path, "_row")
            item_id = f"CAST({quote_identifier(id_column)} AS VARCHAR)"
        else:
            item_id = "CAST(_row AS VARCHAR)"
        columns = _kept_columns(columns, id_column)
        if staged.format == "csv":
            types = _infer_csv_types(con, staging, columns)
            selected = ", ".join(
                f"CAST(trim({quote_identifier(c)}) AS {types[c]}) AS {quote_identifier(c)}"
                if types[c] != "VARCHAR"
                else quote_identifier(c)
                for c in columns
            )
        else:
            selected = ", ".join(quote_identifier(c) for c in columns)
        replaced = _install(
            con,
            name,
            f"SELECT {item_id} AS item_id, {selected} FROM {staging} ORDER BY _row",
            "TABLE",
        )
        con.execute(f"DROP TABLE {staging}")
    source = str(staged.path.resolve())
    return DatasetInfo(name, staged.rows, columns, id_column, "table", source, replaced)


def _check_replaceable(con, name: str, replace: bool) -> None:
    """Refuse to replace an existing dataset unless asked: labels and queues point at it."""
    if replace or not dataset_exists(con, name):
        return
    rows = con.execute(f"SELECT count(*) FROM {table_of(name)}").fetchone()[0]
    raise InputError(
        f"dataset {name!r} exists already ({rows} rows): pass --replace to replace it (its "
        "labels and queue items stay with their ids), or import under another name"
    )


def _install(con, name: str, query: str, kind: str) -> Replacement | None:
    """Make ``query`` dataset ``name``: a ``TABLE`` (copied) or a ``VIEW`` (read at each use).

    In the caller's transaction. The new version is built beside the old one, which is
    compared with it (``store.replacement``) before it is dropped: a failure anywhere
    leaves the old version as it was.
    """
    incoming = quote_identifier(f"_incoming_dataset_{name}")
    con.execute(f"CREATE {kind} {incoming} AS {query}")
    replaced = None
    if dataset_exists(con, name):
        replaced = compare_versions(con, name, table_of(name), incoming)
        drop_dataset(con, name)
    con.execute(f"ALTER {kind} {incoming} RENAME TO {table_of(name)}")
    if kind == "TABLE":
        _index_item_ids(con, name)
    return replaced


def _index_item_ids(con, name: str) -> None:
    """An index on ``item_id``: the labeling server looks items up one by one."""
    index = quote_identifier(f"dataset_{name}_item_id")
    con.execute(f"CREATE UNIQUE INDEX {index} ON {table_of(name)} (item_id)")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _import_parquet(
    con, name: str, path: Path, *, id_column, progress, replace: bool
) -> DatasetInfo:
    """Parquet goes straight through DuckDB's own parallel reader: typed, no Python loop.

    ``file_row_number`` gives each row its position, so ids without an id column are the
    same as from a CSV of the same rows.
    """
    columns, n_rows, _ = _parquet_batches(path, id_column)
    if n_rows == 0:
        raise InputError(f"{path} holds no rows")
    if id_column is not None and id_column not in columns:
        raise InputError(
            f"{path}: no id column {id_column!r}; the columns are {', '.join(columns)}"
        )
    source = f"read_parquet({_sql_string(str(path.resolve()))}, file_row_number = true)"
    if id_column is not None:
        item_id = f"CAST({quote_identifier(id_column)} AS VARCHAR)"
    else:
        item_id = "CAST(file_row_number + 1 AS VARCHAR)"
    columns = _kept_columns(columns, id_column)
    selected = ", ".join(quote_identifier(c) for c in columns)
    with transaction(con):
        _check_replaceable(con, name, replace)
        if id_column is not None:
            _check_id_column(con, source, id_column, path, "file_row_number + 1")
        replaced = _install(
            con,
            name,
            f"SELECT {item_id} AS item_id, {selected} FROM {source} ORDER BY file_row_number",
            "TABLE",
        )
    if progress:
        progress(n_rows)
    return DatasetInfo(name, n_rows, columns, id_column, "table", str(path.resolve()), replaced)


def register_parquet(
    con: duckdb.DuckDBPyConnection,
    name: str,
    pattern: str,
    *,
    id_column: str | None = None,
    replace: bool = False,
) -> DatasetInfo:
    """Register Parquet files (a path or a glob) as dataset ``name``, read in place.

    Nothing is copied: a view reads the files at each use. Without an id column, the id is
    the 1-based row position in the file, prefixed by the file name when there are several.
    An existing dataset ``name`` is replaced only with ``replace`` (as in ``import_file``).
    """
    check_dataset_name(name)
    files = sorted(globbing.glob(os.path.expanduser(pattern)))
    if not files:
        raise InputError(f"{pattern}: no Parquet file matches")
    files = [str(Path(f).resolve()) for f in files]
    columns, _, _ = _parquet_batches(Path(files[0]), id_column)
    if id_column is not None and id_column not in columns:
        raise InputError(
            f"{files[0]}: no id column {id_column!r}; the columns are {', '.join(columns)}"
        )
    file_list = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    source = f"read_parquet({file_list}, file_row_number = true, filename = true)"
    if id_column is not None:
        item_id = f"CAST({quote_identifier(id_column)} AS VARCHAR)"
    elif len(files) == 1:
        item_id = "CAST(file_row_number + 1 AS VARCHAR)"
    else:
        item_id = "parse_filename(filename) || ':' || CAST(file_row_number + 1 AS VARCHAR)"
    columns = _kept_columns(columns, id_column)
    selected = ", ".join(quote_identifier(c) for c in columns)
    with transaction(con):
        _check_replaceable(con, name, replace)
        try:
            if id_column is not None:
                _check_id_column(con, source, id_column, pattern, "file_row_number + 1")
            replaced = _install(
                con, name, f"SELECT {item_id} AS item_id, {selected} FROM {source}", "VIEW"
            )
            rows = con.execute(f"SELECT count(*) FROM {table_of(name)}").fetchone()[0]
        except duckdb.Error as exc:
            raise InputError(
                f"{pattern}: cannot read these Parquet files together: {exc}"
            ) from None
    return DatasetInfo(name, rows, columns, id_column, "parquet", pattern, replaced)


# --- reading back ----------------------------------------------------------------------------


def _relation_kind(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """'table', 'view' or None: what holds dataset ``name`` in the store."""
    relation = f"dataset_{check_dataset_name(name)}"
    row = con.execute(
        "SELECT 'table' FROM duckdb_tables() WHERE table_name = ? "
        "UNION ALL SELECT 'view' FROM duckdb_views() WHERE view_name = ?",
        [relation, relation],
    ).fetchone()
    return row[0] if row else None


def dataset_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return _relation_kind(con, name) is not None


def require_dataset(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """The quoted relation of dataset ``name``, or a clear error if there is none."""
    if not dataset_exists(con, name):
        raise InputError(f"no dataset {name!r} in the store; import it first")
    return table_of(name)


def dataset_schema(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str]]:
    """(column, type) pairs of a dataset, ``item_id`` first."""
    relation = require_dataset(con, name)
    return [
        (row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    ]


def count_rows(con: duckdb.DuckDBPyConnection, name: str) -> int:
    return con.execute(f"SELECT count(*) FROM {require_dataset(con, name)}").fetchone()[0]


def head(con: duckdb.DuckDBPyConnection, name: str, n: int = 5):
    """The first ``n`` rows as a DataFrame."""
    return con.execute(f"SELECT * FROM {require_dataset(con, name)} LIMIT {int(n)}").df()


def check_columns_exist(con, name: str, columns) -> None:
    available = [c for c, _ in dataset_schema(con, name)]
    missing = [c for c in columns if c not in available]
    if missing:
        raise InputError(
            f"dataset {name!r} has no column {missing[0]!r}; its columns are {', '.join(available)}"
        )


def iter_batches(
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: list[str] | None = None,
    *,
    batch_rows: int = READ_BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Stream a dataset as Arrow record batches, ``item_id`` first, in stored order."""
    relation = require_dataset(con, name)
    if columns:
        check_columns_exist(con, name, columns)
        selected = ", ".join(["item_id", *(quote_identifier(c) for c in columns)])
    else:
        selected = "*"
    yield from arrow_batches(con, f"SELECT {selected} FROM {relation}", batch_rows)


def arrow_batches(
    con: duckdb.DuckDBPyConnection, query: str, batch_rows: int, parameters=None
) -> Iterator[pa.RecordBatch]:
    """Stream a query's result as record batches of at most ``batch_rows`` rows."""
    relation = con.sql(query, params=parameters or None)
    # DuckDB 2 names it to_arrow_reader; 1.x fetch_record_batch.
    to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    yield from to_reader(batch_rows)


def export_dataset(con: duckdb.DuckDBPyConnection, name: str, path: Path | str) -> Path:
    """Write a dataset to Parquet or CSV (by the file suffix), atomically."""
    relation = require_dataset(con, name)
    return copy_query_to_file(con, f"SELECT * FROM {relation}", Path(path))


def copy_query_to_file(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> Path:
    """Write a query's result to ``path`` (.parquet, .csv or .tsv) through a temporary file."""
    fmt = _file_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    if path.suffix.lower() == ".tsv":
        options += ", DELIMITER '\t'"
    escaped = str(temporary).replace("'", "''")
    try:
        con.execute(f"COPY ({query}) TO '{escaped}' ({options})")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def drop_dataset(con: duckdb.DuckDBPyConnection, name: str) -> None:
    kind = _relation_kind(con, name)
    if kind is not None:
        con.execute(f"DROP {kind.upper()} {table_of(name)}")
