"""Input checks at the metrics' public boundary.

Every message names the argument at fault (and the row, for data), so that a recipe or the
dashboard can show it as one line. Internal helpers trust what these return.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import scipy.sparse as sp

from active_labeling.errors import InputError


def check_labels(values, name: str) -> np.ndarray:
    """A non-empty 1-D array of class labels (predictions or true labels)."""
    if isinstance(values, pd.DataFrame):
        raise InputError(f"{name} must be one column of class labels, got a DataFrame")
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(
            f"{name} must be 1-D (one class label per row), got shape {array.shape}; "
            "pass predicted classes (model.predict), not probabilities"
        )
    if array.shape[0] == 0:
        raise InputError(f"{name} is empty: there is nothing to measure")
    if array.dtype.kind in "fO":
        missing = np.flatnonzero(pd.isna(array))
        if missing.size:
            raise InputError(
                f"{name} has {missing.size} missing class label(s) (NaN or None), the first at "
                f"position {int(missing[0])}: a missing class is neither equal to nor "
                "different from another"
            )
    return array


def check_same_length(a, b, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise InputError(
            f"{name_a} has {len(a)} rows but {name_b} has {len(b)}; "
            "they must describe the same rows in the same order"
        )


def _label_kind(labels: np.ndarray) -> str:
    if labels.dtype.kind in "biuf":
        return "numbers"
    if labels.dtype.kind in "US":
        return "text"
    inferred = pd.api.types.infer_dtype(labels, skipna=True)
    if inferred == "string":
        return "text"
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal", "boolean"):
        return "numbers"
    return inferred


def check_comparable_labels(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Refuse to compare text classes with numeric ones: "1" never equals 1, silently."""
    kind_a, kind_b = _label_kind(a), _label_kind(b)
    if {kind_a, kind_b} == {"numbers", "text"}:
        raise InputError(
            f"{name_a} holds {kind_a} but {name_b} holds {kind_b}; class labels of one "
            "type are needed (convert both to text, for instance)"
        )


def check_features(X, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """A 2-D finite float matrix; the message names the first bad row and column."""
    if sp.issparse(X):
        raise InputError(f"{name} is a sparse matrix; pass a dense numeric array")
    try:
        values = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric: {exc}") from None
    if values.ndim != 2:
        raise InputError(f"{name} must be 2-D (rows x features), got shape {values.shape}")
    if values.shape[0] == 0 and not allow_empty:
        raise InputError(f"{name} is empty: there is nothing to measure")
    if values.shape[1] == 0:
        raise InputError(f"{name} has no feature column")
    if values.size and not np.isfinite(values.sum()):
        rows, cols = np.nonzero(~np.isfinite(values))
        if rows.size:
            columns = getattr(X, "columns", None)
            column = repr(str(columns[cols[0]])) if columns is not None else str(cols[0])
            raise InputError(
                f"{name} has a non-finite value ({values[rows[0], cols[0]]}) at row "
                f"{rows[0]}, column {column}; remove or impute it first"
            )
    return values


def check_same_width(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise InputError(
            f"{name_a} has {a.shape[1]} feature columns but {name_b} has {b.shape[1]}; "
            "both must be in the same feature space"
        )


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_non_negative(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise InputError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def check_history(values, name: str) -> np.ndarray:
    """A 1-D float series, oldest first; NaN entries (a signal not computed) are dropped."""
    if isinstance(values, pd.DataFrame):
        raise InputError(f"{name} must be one series of values, oldest first, got a DataFrame")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must hold numbers: {exc}") from None
    if array.ndim != 1:
        raise InputError(f"{name} must be 1-D (one value per model version), got {array.shape}")
    if np.isinf(array).any():
        i = int(np.flatnonzero(np.isinf(array))[0])
        raise InputError(f"{name} has an infinite value at position {i}")
    return array[~np.isnan(array)]
