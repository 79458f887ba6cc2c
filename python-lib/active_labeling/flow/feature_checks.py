"""Checks on feature values read from the store, naming the item and the column.

Missing values are the model's business (its pipeline imputes them); infinity is not: no
imputer handles it, and the error must point at the item, not at a position in a chunk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from active_labeling.errors import InputError


def check_no_infinity(frame: pd.DataFrame, item_ids, dataset: str) -> None:
    """Raise ``InputError`` naming the first item and column holding +-infinity."""
    numeric = frame.select_dtypes("number")
    if not numeric.shape[1]:
        return
    values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isinf(values)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise InputError(
            f"dataset {dataset!r}, item {str(item_ids[row])!r}, column "
            f"{numeric.columns[col]!r} holds {values[row, col]}: replace it with a finite value "
            "or leave it empty"
        )
