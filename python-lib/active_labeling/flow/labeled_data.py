"""The labeled rows of a dataset, joined with their current labels (small: fits in memory)."""

from __future__ import annotations

import pandas as pd

from active_labeling.store.connection import quote_identifier
from active_labeling.store.datasets import check_columns_exist, require_dataset

_LABEL = "__current_label__"


def labeled_frame(con, dataset: str, columns: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """The feature columns of the labeled items of ``dataset`` and their labels.

    Rows come in labeling order; the frame's index is the item id.
    """
    relation = require_dataset(con, dataset)
    check_columns_exist(con, dataset, columns)
    selected = ", ".join(f"d.{quote_identifier(c)}" for c in columns)
    frame = con.execute(
        f"SELECT d.item_id, {selected}, l.label AS {_LABEL} FROM {relation} d "
        "JOIN current_labels l ON l.item_id = d.item_id AND l.dataset = ? ORDER BY l.event_id",
        [dataset],
    ).df()
    frame = frame.set_index("item_id")
    labels = frame.pop(_LABEL).astype(str)
    return frame, labels
