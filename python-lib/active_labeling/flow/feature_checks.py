"""Checks on feature values read from the store, naming the item and the column.

Missing values are the model's business (its pipeline imputes them); infinity is not: no
imputer handles it, and the error must point at the item, not at a position in a chunk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from active_labeling.errors import InputError


def _infinity_error(dataset: str, item_id, column: str, value) -> InputError:
    return InputError(
        f"dataset {dataset!r}, item {str(item_id)!r}, column {column!r} holds {value}: "
        "replace it with a finite value or leave it empty"
    )


def check_batch_no_infinity(batch: pa.RecordBatch, dataset: str) -> None:
    """The same check on an Arrow batch read from the store (``item_id`` first), column by
    column in Arrow, without converting the batch."""
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not pa.types.is_floating(column.type):
            continue
        infinite = pc.is_inf(column)
        if pc.any(infinite).as_py():
            row = pc.index(infinite, True).as_py()
            raise _infinity_error(
                dataset, batch.column("item_id")[row].as_py(), name, column[row].as_py()
            )


def check_no_infinity(frame: pd.DataFrame, item_ids, dataset: str) -> None:
    """Raise ``InputError`` naming the first item and column holding +-infinity."""
    for name in frame.select_dtypes("number").columns:
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        infinite = np.isinf(values)
        if infinite.any():
            row = int(np.argmax(infinite))
            raise _infinity_error(dataset, item_ids[row], name, values[row])
