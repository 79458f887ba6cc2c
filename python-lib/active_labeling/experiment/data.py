"""The labeled rows of an experiment: loaded once from their source, then kept as a snapshot.

Whatever the source (a scikit-learn data set, a CSV or Parquet file, a project dataset, a
generator), an experiment works on one numeric matrix, one label per row, a row id, and,
when the source marks them, which rows are noisy. The snapshot (``data.parquet`` in the
experiment folder) freezes them: resuming, replaying and reporting read the snapshot, never
the source again, so a moved or edited file cannot change a resumed run. Nothing here
splits, samples or fits.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from active_labeling.errors import InputError
from active_labeling.experiment.config import DataSource, generators

ROW_ID = "_row_id"
LABEL = "_label"
NOISY = "_noisy"
_RESERVED = (ROW_ID, LABEL, NOISY)


@dataclass
class ExperimentData:
    """Rows to simulate on.

    Attributes
    ----------
    X : ndarray of float of shape (n, d)
        Finite numeric features.
    y : ndarray of shape (n,)
        The true label of each row.
    row_ids : ndarray of str of shape (n,)
        A stable id per row (the source's id column, else the row position).
    feature_names : list of str
    noisy : ndarray of bool of shape (n,) or None
        Rows the generator marks as noisy, when it does.
    """

    X: np.ndarray
    y: np.ndarray
    row_ids: np.ndarray
    feature_names: list[str]
    noisy: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.X.shape[0]
        if n == 0:
            raise InputError("the data has no row")
        if self.X.ndim != 2 or len(self.feature_names) != self.X.shape[1]:
            raise InputError("the data needs one name per feature column")
        classes = np.unique(self.y)
        if classes.shape[0] < 2:
            raise InputError(f"the data holds a single class ({classes[0]!r}); it needs two")
        if len(set(self.row_ids.tolist())) != n:
            raise InputError("the row ids are not unique")

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.y)

    @property
    def codes(self) -> np.ndarray:
        """Each row's label as its position in ``classes`` (what the models are fitted on)."""
        return np.searchsorted(self.classes, self.y)


def load_data(source: DataSource, *, where: str = "data") -> ExperimentData:
    """Read the rows ``source`` describes; ``where`` names the config in messages.

    Columns that are not all finite numbers (categories, text, missing values) go through
    the project's preprocessing (median imputation and scaling, one-hot, TF-IDF) once,
    fitted on all the rows without their labels.

    Examples
    --------
    >>> from active_labeling.experiment.config import DataSource
    >>> data = load_data(DataSource(sklearn="iris"))
    >>> data.X.shape, data.classes.tolist(), data.noisy is None
    ((150, 4), [0, 1, 2], True)
    """
    kind = source.kind
    if kind == "sklearn":
        return _sklearn_data(source.sklearn)
    if kind == "generator":
        X, y, noisy = generators()[source.generator](source.random_state, **source.params)
        X = np.asarray(X, dtype=float)
        names = [f"x{j}" for j in range(X.shape[1])]
        ids = np.arange(X.shape[0]).astype(str)
        return ExperimentData(X, np.asarray(y), ids, names, np.asarray(noisy, dtype=bool))
    if kind == "file":
        frame = _read_file(Path(source.file))
        return _from_frame(
            frame,
            where=source.file,
            label=source.label,
            id_column=source.id,
            features=source.features,
        )
    return _project_data(source, where)


def _sklearn_data(name: str) -> ExperimentData:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    X = np.asarray(bunch.data, dtype=float)
    names = [str(n) for n in getattr(bunch, "feature_names", [])] or [
        f"x{j}" for j in range(X.shape[1])
    ]
    return ExperimentData(X, np.asarray(bunch.target), np.arange(X.shape[0]).astype(str), names)


def _read_file(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot be read: {exc}") from None


def _project_data(source: DataSource, where: str) -> ExperimentData:
    from active_labeling.flow.labeled_data import labeled_frame
    from active_labeling.flow.project import Project
    from active_labeling.store.connection import quote_identifier
    from active_labeling.store.datasets import check_columns_exist, require_dataset

    project = Project.open(source.project)
    features = source.features or project.feature_columns(source.dataset)
    with project.connect(read_only=True) as con:
        if source.label:
            relation = require_dataset(con, source.dataset)
            columns = ["item_id", *features, source.label]
            check_columns_exist(con, source.dataset, [*features, source.label])
            selected = ", ".join(quote_identifier(c) for c in columns)
            frame = con.execute(f"SELECT {selected} FROM {relation}").df()
            label_column = source.label
        else:
            frame, labels = labeled_frame(con, source.dataset, features)
            frame = frame.reset_index()
            label_column = LABEL
            frame[label_column] = labels.to_numpy()
    if frame.empty:
        raise InputError(f"{where}: dataset {source.dataset!r} has no labeled row")
    return _from_frame(
        frame,
        where=f"dataset {source.dataset!r}",
        label=label_column,
        id_column="item_id",
        features=features,
    )


def _from_frame(
    frame: pd.DataFrame,
    *,
    where: str,
    label: str,
    id_column: str | None,
    features: list[str] | None,
) -> ExperimentData:
    label_column = label
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    for name in filter(None, [label_column, id_column, *(features or [])]):
        if name not in columns:
            raise InputError(f"{where}: no column {name!r}; the columns are {', '.join(columns)}")
    features = features or [c for c in columns if c not in (label_column, id_column)]
    if not features:
        raise InputError(f"{where}: no feature column besides the label")
    labels = frame[label_column]
    missing = np.flatnonzero(labels.isna().to_numpy())
    if missing.size:
        raise InputError(
            f"{where}: column {label_column!r} has no label at row {int(missing[0])} "
            f"({missing.size} rows without one); keep labeled rows only"
        )
    if id_column:
        ids = frame[id_column].astype(str).to_numpy()
        twice = pd.Series(ids).duplicated()
        if twice.any():
            row = int(np.flatnonzero(twice.to_numpy())[0])
            raise InputError(
                f"{where}: id {ids[row]!r} in column {id_column!r} is repeated at row {row}"
            )
    else:
        ids = np.arange(len(frame)).astype(str)
    X, names = _numeric_matrix(frame[features], where)
    y = labels.to_numpy()
    if y.dtype == object:
        y = labels.astype(str).to_numpy()
    return ExperimentData(X, y, ids, names)


def _numeric_matrix(frame: pd.DataFrame, where: str) -> tuple[np.ndarray, list[str]]:
    """The feature matrix and its column names (the encoded ones when encoding was needed)."""
    numeric = all(
        pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in frame.dtypes
    )
    if numeric:
        X = frame.to_numpy(dtype=float)
        if np.isfinite(X).all():
            return X, [str(c) for c in frame.columns]
    from active_labeling.models.features import build_preprocessor, infer_column_kinds

    try:
        kinds = infer_column_kinds(frame, list(frame.columns))
        pre = build_preprocessor(kinds, dense=True, max_text_features=500)
        X = np.asarray(pre.fit_transform(frame), dtype=float)
        return X, [str(n) for n in pre.get_feature_names_out()]
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


# -- snapshot ---------------------------------------------------------------------------------


def write_snapshot(data: ExperimentData, path: Path) -> str:
    """Write the rows to ``path`` (Parquet, atomically) and return the file's SHA-256."""
    clash = set(data.feature_names) & set(_RESERVED)
    if clash:
        raise InputError(f"feature column {sorted(clash)[0]!r} has a name the harness reserves")
    columns = {ROW_ID: pa.array(data.row_ids.astype(str)), LABEL: pa.array(data.y)}
    if data.noisy is not None:
        columns[NOISY] = pa.array(data.noisy)
    for j, name in enumerate(data.feature_names):
        columns[name] = pa.array(data.X[:, j])
    table = pa.table(columns)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return file_digest(path)


def read_snapshot(path: Path) -> ExperimentData:
    """The rows written by :func:`write_snapshot`."""
    table = pq.read_table(path)
    names = [n for n in table.column_names if n not in _RESERVED]
    X = np.column_stack([table.column(n).to_numpy() for n in names]).astype(float, copy=False)
    noisy = table.column(NOISY).to_numpy() if NOISY in table.column_names else None
    y = table.column(LABEL).to_numpy(zero_copy_only=False)
    if y.dtype == object:
        y = y.astype(str)
    ids = table.column(ROW_ID).to_numpy(zero_copy_only=False).astype(str)
    return ExperimentData(X, y, ids, names, noisy)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
