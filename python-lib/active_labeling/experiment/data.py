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
import json
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
#: The snapshot's schema metadata key holding a multi-label data set's classes, in order.
CLASSES_KEY = "active_labeling.classes"
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
    class_names : list of str or None
        Multi-label data: the name of each column of ``y``, which is then an (n, k)
        indicator matrix of label sets.
    """

    X: np.ndarray
    y: np.ndarray
    row_ids: np.ndarray
    feature_names: list[str]
    noisy: np.ndarray | None = None
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        n = self.X.shape[0]
        if n == 0:
            raise InputError("the data has no row")
        if self.X.ndim != 2 or len(self.feature_names) != self.X.shape[1]:
            raise InputError("the data needs one name per feature column")
        if self.y.ndim == 2:
            self._check_label_sets()
        else:
            classes = np.unique(self.y)
            if classes.shape[0] < 2:
                raise InputError(f"the data holds a single class ({classes[0]!r}); it needs two")
        if len(set(self.row_ids.tolist())) != n:
            raise InputError("the row ids are not unique")

    def _check_label_sets(self) -> None:
        if self.y.shape[0] != self.X.shape[0] or not np.isin(self.y, (0, 1)).all():
            raise InputError("multi-label data needs one row of 0/1 per item, one per class")
        self.y = self.y.astype(np.int64)
        if self.class_names is None:
            self.class_names = [f"class{j}" for j in range(self.y.shape[1])]
        if len(self.class_names) != self.y.shape[1] or len(set(self.class_names)) != len(
            self.class_names
        ):
            raise InputError("multi-label data needs one distinct name per class column")
        held = self.y.sum(axis=0)
        never = [c for c, count in zip(self.class_names, held, strict=True) if count == 0]
        if never:
            raise InputError(f"class {never[0]!r} is held by no item of the data")

    @property
    def multi_label(self) -> bool:
        """Whether each item holds a set of classes (``y`` is an indicator matrix)."""
        return self.y.ndim == 2

    @property
    def classes(self) -> np.ndarray:
        if self.multi_label:
            return np.asarray(self.class_names, dtype=object)
        return np.unique(self.y)

    @property
    def codes(self) -> np.ndarray:
        """Each row's label as its position in ``classes`` (what the models are fitted on);
        for multi-label data the indicator matrix itself."""
        if self.multi_label:
            return self.y
        return np.searchsorted(self.classes, self.y)

    def label_text(self, codes: np.ndarray) -> list[str]:
        """Labels as the run files write them: the class, or a label set's JSON list."""
        if self.multi_label:
            names = self.class_names
            return [json.dumps([names[j] for j in np.flatnonzero(row)]) for row in codes]
        return [str(v) for v in self.classes[codes]]


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
        noisy = None if noisy is None else np.asarray(noisy, dtype=bool)
        return ExperimentData(X, np.asarray(y), ids, names, noisy)
    if kind == "file":
        frame = _read_file(Path(source.file))
        if source.labels:
            return _label_set_frame(frame, source)
        return _from_frame(
            frame,
            where=source.file,
            label=source.label,
            id_column=source.id,
            features=source.features,
        )
    return _project_data(source, where)


def _label_set_frame(frame: pd.DataFrame, source: DataSource) -> ExperimentData:
    """Multi-label rows of a file: one 0/1 (or true/false) column per class (``labels``)."""
    where = source.file
    X, ids, names = _features_and_ids(
        frame, where=where, id_column=source.id, features=source.features, exclude=source.labels
    )
    values = frame[source.labels].to_numpy()
    bad = ~np.isin(values, (0, 1, True, False))
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise InputError(
            f"{where}: label column {source.labels[col]!r} holds {values[row, col]!r} at row "
            f"{row}; a class column holds 0 or 1"
        )
    return ExperimentData(X, values.astype(np.int64), ids, names, class_names=list(source.labels))


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
    if project.settings.multi_label:
        return _project_label_sets(frame, project, source, label_column, features)
    return _from_frame(
        frame,
        where=f"dataset {source.dataset!r}",
        label=label_column,
        id_column="item_id",
        features=features,
    )


def _project_label_sets(frame, project, source, label_column, features) -> ExperimentData:
    """A multi-label project's rows: their label sets (JSON lists) as an indicator matrix."""
    from active_labeling.store.label_sets import label_set_matrix

    classes = list(project.settings.classes)
    where = f"dataset {source.dataset!r}"
    Y = label_set_matrix(
        frame[label_column].astype(str).to_numpy(),
        classes,
        where=lambda i: f"{where}, item {frame['item_id'].iloc[i]!r}",
    )
    X, ids, names = _features_and_ids(
        frame, where=where, id_column="item_id", features=features, exclude=[label_column]
    )
    return ExperimentData(X, Y, ids, names, class_names=classes)


def _from_frame(
    frame: pd.DataFrame,
    *,
    where: str,
    label: str,
    id_column: str | None,
    features: list[str] | None,
) -> ExperimentData:
    label_column = label
    X, ids, names = _features_and_ids(
        frame, where=where, id_column=id_column, features=features, exclude=[label_column]
    )
    labels = frame[label_column]
    missing = np.flatnonzero(labels.isna().to_numpy())
    if missing.size:
        raise InputError(
            f"{where}: column {label_column!r} has no label at row {int(missing[0])} "
            f"({missing.size} rows without one); keep labeled rows only"
        )
    y = labels.to_numpy()
    if y.dtype == object:
        y = labels.astype(str).to_numpy()
    return ExperimentData(X, y, ids, names)


def _features_and_ids(
    frame: pd.DataFrame,
    *,
    where: str,
    id_column: str | None,
    features: list[str] | None,
    exclude: list[str],
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The feature matrix, the row ids and the feature names of ``frame``'s rows
    (``features``, by default every column but the id and ``exclude``, the labels)."""
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    for name in filter(None, [*exclude, id_column, *(features or [])]):
        if name not in columns:
            raise InputError(f"{where}: no column {name!r}; the columns are {', '.join(columns)}")
    features = features or [c for c in columns if c not in (*exclude, id_column)]
    if not features:
        raise InputError(f"{where}: no feature column besides the label")
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
    return X, ids, names


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
    label = data.label_text(data.y) if data.multi_label else data.y
    columns = {ROW_ID: pa.array(data.row_ids.astype(str)), LABEL: pa.array(label)}
    if data.noisy is not None:
        columns[NOISY] = pa.array(data.noisy)
    for j, name in enumerate(data.feature_names):
        columns[name] = pa.array(data.X[:, j])
    table = pa.table(columns)
    if data.multi_label:  # the label sets' class order, which an empty set cannot tell
        table = table.replace_schema_metadata({CLASSES_KEY: json.dumps(data.class_names)})
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
    metadata = table.schema.metadata or {}
    if CLASSES_KEY.encode() in metadata:
        from active_labeling.store.label_sets import label_set_matrix

        classes = json.loads(metadata[CLASSES_KEY.encode()])
        Y = label_set_matrix(y, classes, where=lambda i: f"{path} row {i}")
        return ExperimentData(X, Y, ids, names, noisy, class_names=classes)
    return ExperimentData(X, y, ids, names, noisy)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
