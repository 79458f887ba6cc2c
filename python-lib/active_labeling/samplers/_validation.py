"""Input checks at the samplers' public boundary, and the one random-state helper.

Checks run once, where data enters a sampler; the internal helpers trust their inputs.
Every message names the parameter and, for data, the row and column at fault.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp

from active_labeling.errors import BatchSizeWarning, InputError


def plain(value):
    """A numpy scalar as the Python value it holds, for messages: ``np.int64(0)`` is ``0``."""
    return value.item() if isinstance(value, np.generic) else value


def _is_int(value) -> bool:
    """Whether ``value`` is an integer; a bool is not one, though Python counts it as one."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def check_random_state(random_state, owner: str | None = None) -> None:
    """Refuse what ``as_generator`` cannot turn into a generator, without drawing from it."""
    if random_state is None or (_is_int(random_state) and random_state >= 0):
        return
    if isinstance(random_state, np.random.Generator | np.random.RandomState):
        return
    prefix = f"{owner}: " if owner else ""
    raise InputError(
        f"{prefix}random_state must be None, a non-negative int or a numpy Generator, "
        f"got {plain(random_state)!r}"
    )


def as_generator(random_state) -> np.random.Generator:
    """Turn ``None``, an int, a ``Generator`` or a ``RandomState`` into a ``Generator``.

    A ``Generator`` is used as is (its state advances); an int always gives the same stream.
    """
    check_random_state(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


def seed_from(rng: np.random.Generator) -> int:
    """An int seed drawn from ``rng``, for scikit-learn estimators that want one."""
    return int(rng.integers(np.iinfo(np.int32).max))


def check_int(value, name: str, owner: str | None = None, *, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer of at least ``minimum``; else an InputError
    naming the parameter, its value, and ``owner`` (the sampler) when given."""
    if not _is_int(value) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        prefix = f"{owner}: " if owner else ""
        raise InputError(f"{prefix}{name} must be {expected}, got {plain(value)!r}")
    return int(value)


def check_positive_int(value, name: str, owner: str | None = None) -> int:
    return check_int(value, name, owner)


def check_batch_size(batch_size, owner: str | None = None) -> int:
    return check_positive_int(batch_size, "batch_size", owner)


def check_bool(value, name: str, owner: str | None = None) -> bool:
    """``value`` if it is a bool; a string such as "no" is refused, not read as true."""
    if not isinstance(value, bool | np.bool_):
        prefix = f"{owner}: " if owner else ""
        raise InputError(f"{prefix}{name} must be True or False, got {plain(value)!r}")
    return bool(value)


def seed_estimator(estimator, rng: np.random.Generator):
    """Give every ``random_state`` parameter of ``estimator`` (nested ones too) a seed.

    Pipelines and meta-estimators hide their steps' seeds as ``step__random_state``; all are
    set, so that a seeded run is replayable whatever the model.
    """
    names = [
        name
        for name in estimator.get_params(deep=True)
        if name == "random_state" or name.endswith("__random_state")
    ]
    if names:
        estimator.set_params(**{name: seed_from(rng) for name in names})
    return estimator


def effective_batch_size(batch_size, n_pool: int, name: str) -> int:
    """The batch size to use on a pool of ``n_pool`` rows, warning when it is cut."""
    batch_size = check_batch_size(batch_size, name)
    if batch_size > n_pool:
        warnings.warn(
            f"{name}: batch_size={batch_size} is larger than the pool ({n_pool} rows); "
            "the whole pool is returned",
            BatchSizeWarning,
            stacklevel=3,
        )
        return n_pool
    return batch_size


def _column_name(X, j: int):
    columns = getattr(X, "columns", None)
    return repr(str(columns[j])) if columns is not None else str(j)


def _raise_first(bad: np.ndarray, values, X, what: str, row_offset: int, kind=None) -> None:
    rows, cols = np.nonzero(bad)
    i, j = int(rows[0]), int(cols[0])
    if kind is None:
        # In a DataFrame or an object array a NaN marks a missing value (None becomes
        # one): named as the model-based samplers name it.
        objects = isinstance(X, np.ndarray) and X.dtype.kind == "O"
        missing = (isinstance(X, pd.DataFrame) or objects) and np.isnan(values[i, j])
        kind = "a missing value" if missing else f"a non-finite value ({values[i, j]})"
    raise InputError(
        f"{what} has {kind} at row {i + row_offset}, column {_column_name(X, j)}; "
        "remove or impute it before sampling"
    )


def _raise_first_non_finite(values: np.ndarray, X, what: str, row_offset: int) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        _raise_first(bad, values, X, what, row_offset)


def _converts_to_float(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _raise_first_non_numeric(X, what: str, row_offset: int) -> None:
    """After ``X`` failed to convert to floats, name its first cell that is missing (pd.NA,
    None) or not a number. Returns quietly when ``X`` is no table (the caller's error stands).

    Runs only on that failure, so the cell-by-cell look at object columns costs nothing on
    good input.
    """
    if isinstance(X, pd.DataFrame):
        cells = X
    else:
        try:
            array = np.asarray(X, dtype=object)
        except (TypeError, ValueError):
            return
        if array.ndim != 2:
            return
        cells = pd.DataFrame(array)
    missing = cells.isna().to_numpy()
    non_numeric = np.zeros(missing.shape, dtype=bool)
    for j in range(cells.shape[1]):
        column = cells.iloc[:, j]
        if not pd.api.types.is_numeric_dtype(column.dtype):  # object, str, datetime...
            non_numeric[:, j] = [not _converts_to_float(v) for v in column.to_numpy()]
    bad = missing | non_numeric
    if bad.any():
        rows, cols = np.nonzero(bad)
        i, j = int(rows[0]), int(cols[0])
        if missing[i, j]:
            _raise_first(bad, None, X, what, row_offset, "a missing value")
        raise InputError(
            f"{what} has a non-numeric value ({plain(cells.iat[i, j])!r}) at row "
            f"{i + row_offset}, column {_column_name(X, j)}; this sampler measures numeric "
            "features: encode or drop that column first"
        )


def check_features(X, what: str = "pool X", *, row_offset: int = 0, allow_empty=False):
    """Validate a feature matrix and return it as a 2-D float array.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n, d)
        Numeric features.
    what : str
        How to name ``X`` in messages.
    row_offset : int
        Added to row numbers in messages (the position of a chunk in a streamed pool).
    allow_empty : bool
        Whether zero rows is acceptable (a labeled set may be empty; a pool may not).
    """
    if sp.issparse(X):
        raise InputError(
            f"{what} is a sparse matrix; this sampler needs a dense numeric array "
            "(convert it with .toarray(), or reduce it with TruncatedSVD first)"
        )
    try:
        values = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        _raise_first_non_numeric(X, what, row_offset)
        raise InputError(f"{what} must be numeric: {exc}") from None
    if values.ndim == 1:
        raise InputError(
            f"{what} must be 2-D (rows x features), got a 1-D array of {values.shape[0]} values; "
            "reshape a single feature with X.reshape(-1, 1)"
        )
    if values.ndim != 2:
        raise InputError(f"{what} must be 2-D (rows x features), got shape {values.shape}")
    if values.shape[0] == 0 and not allow_empty:
        raise InputError(f"{what} is empty: there is nothing to sample from")
    if values.shape[1] == 0:
        raise InputError(f"{what} has no feature column")
    # O(1) memory fast path: a finite sum means every value is finite; an infinite sum
    # may also come from overflow, so only then look for the culprit.
    if values.size and not np.isfinite(values.sum()):
        _raise_first_non_finite(values, X, what, row_offset)
    return values


def check_model_input(
    X, what: str = "pool X", *, row_offset: int = 0, model_checks_finite: bool = False
):
    """Validate input for a model-based sampler.

    A DataFrame, a Series, a sparse matrix or text goes to the model unchanged, since its
    own preprocessing may impute missing values, encode categories or vectorize text; an
    infinite number is still refused (no imputer handles it). Text given as a list comes
    back as an object array, so that every sampler can take and count its rows. Anything
    else must be a finite numeric matrix. With ``model_checks_finite`` (the model refuses
    NaN and infinity itself), a numeric matrix is not scanned here: ``explain_model_error``
    names the cell if the model refuses it, so the pool is read once instead of twice.
    """
    if sp.issparse(X):
        if X.shape[0] == 0:
            raise InputError(f"{what} is empty: there is nothing to sample from")
        if not np.isfinite(X.data).all():
            raise InputError(f"{what} holds a non-finite value in its sparse data")
        return X
    if isinstance(X, pd.DataFrame | pd.Series):
        if len(X) == 0:
            raise InputError(f"{what} is empty: there is nothing to sample from")
        frame = X.to_frame() if isinstance(X, pd.Series) else X
        # Column by column: a float column's values are a view, the frame is never copied.
        for j, name in enumerate(frame.columns):
            column = frame[name]
            if not pd.api.types.is_numeric_dtype(column.dtype):
                continue
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            infinite = np.isinf(values)
            if infinite.any():
                i = int(np.argmax(infinite))
                raise InputError(
                    f"{what} has a non-finite value ({values[i]}) at row {i + row_offset}, "
                    f"column {_column_name(frame, j)}; remove or impute it before sampling"
                )
        return X
    if isinstance(X, list | tuple | np.ndarray):
        array = np.asarray(X)
        if array.dtype.kind in "OUS":  # text: the model vectorizes it
            if array.shape[0] == 0:
                raise InputError(f"{what} is empty: there is nothing to sample from")
            if isinstance(X, np.ndarray) or array.dtype.kind == "O":
                return array
            # A list becomes an array, since the samplers take and count rows on arrays; of
            # objects, so that each value keeps its type (a number in a row of text stays one).
            return np.asarray(X, dtype=object)
        if model_checks_finite and array.dtype.kind == "f" and array.ndim == 2:
            if array.shape[0] == 0:
                raise InputError(f"{what} is empty: there is nothing to sample from")
            if array.shape[1] == 0:
                raise InputError(f"{what} has no feature column")
            return array
    return check_features(X, what, row_offset=row_offset)


def explain_model_error(X, what: str = "pool X", *, row_offset: int = 0) -> None:
    """After a model refused ``X``, raise an ``InputError`` naming its first missing value.

    Returns quietly when ``X`` holds no missing value (the model's error stands then).
    """
    if isinstance(X, pd.Series):
        X = X.to_frame()
    if isinstance(X, pd.DataFrame) or (
        isinstance(X, np.ndarray) and X.dtype.kind == "O" and X.ndim == 2
    ):
        # pd.isna, not np.isnan: it also finds pd.NA and None in object columns.
        missing = np.asarray(pd.isna(X))
        if missing.any():
            _raise_first(missing, None, X, what, row_offset, "a missing value")
    elif isinstance(X, np.ndarray) and X.dtype.kind == "f" and X.ndim == 2:
        _raise_first_non_finite(X, X, what, row_offset)


def feature_names(X) -> np.ndarray | None:
    """The column names of a DataFrame, as an object array; None for anything else."""
    return np.asarray(X.columns, dtype=object) if isinstance(X, pd.DataFrame) else None


def check_feature_names(X, fitted, owner: str, what: str = "pool X") -> None:
    """Refuse a DataFrame whose columns are not, in order, the ``fitted`` ones.

    The samplers compare rows column by column: a pool with its columns in another order
    would be measured against the wrong labeled features. As scikit-learn's estimators do
    ("The feature names should match those that were passed during fit"), a mismatch is
    refused rather than guessed; input without names (an array) is taken by position.
    """
    names = feature_names(X)
    if fitted is None or names is None:
        return
    names, fitted = names.tolist(), list(fitted)
    if names == fitted:
        return
    unseen = [name for name in names if name not in fitted]
    missing = [name for name in fitted if name not in names]
    if not unseen and not missing:
        j = next(j for j, (now, then) in enumerate(zip(names, fitted, strict=False)) if now != then)
        raise InputError(
            f"{owner}: {what} has the columns of the labeled X in another order (column {j} "
            f"is {plain(names[j])!r}, was {plain(fitted[j])!r}); the sampler compares columns "
            "by position, so reorder it as in fit: X_pool[sampler.feature_names_in_]"
        )
    raise InputError(
        f"{owner}: the columns of {what} are not those of the labeled X given to fit "
        f"(unseen at fit: {_listed(unseen)}; missing: {_listed(missing)})"
    )


def _listed(names: list) -> str:
    return ", ".join(repr(plain(name)) for name in names) or "none"


def n_rows(X) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def is_chunk_stream(X) -> bool:
    """Whether ``X`` is a stream of chunks rather than one matrix.

    Iterators and generators are streams; arrays, lists and DataFrames are matrices.
    """
    return isinstance(X, Iterator) or isinstance(X, PoolChunks)


class PoolChunks(Iterable):
    """Mark an iterable of chunks (arrays or DataFrames) as a streamed pool.

    A generator is recognised as a stream on its own; wrap a list of arrays in
    ``PoolChunks`` so that it is not taken for one matrix.

    Examples
    --------
    >>> import numpy as np
    >>> chunks = PoolChunks([np.zeros((2, 3)), np.ones((1, 3))])
    >>> [c.shape[0] for c in chunks]
    [2, 1]
    """

    def __init__(self, chunks: Iterable):
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)


def iter_chunks(X, chunk_size: int):
    """Split one matrix into row chunks (views, no copy) for streamed scoring.

    Examples
    --------
    >>> import numpy as np
    >>> [c.shape for c in iter_chunks(np.zeros((5, 2)), 2)]
    [(2, 2), (2, 2), (1, 2)]
    """
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    n = n_rows(X)
    take = X.iloc if hasattr(X, "iloc") else X
    for start in range(0, n, chunk_size):
        yield take[start : start + chunk_size]
