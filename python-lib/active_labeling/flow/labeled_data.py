"""The labeled rows of a dataset, joined with their labels (small: fits in memory).

The labels are those ``store.consensus`` decides: a reviewer's decision, else the consensus
of the labelers of an item labeled twice or more, else its one label; a disputed item
(labelers who disagree, no decision yet) is left out until a reviewer decides.
"""

from __future__ import annotations

import pandas as pd

from active_labeling.store.connection import quote_identifier
from active_labeling.store.consensus import ConsensusRule, decided_labels
from active_labeling.store.datasets import check_columns_exist, require_dataset


def labeled_frame(
    con, dataset: str, columns: list[str], rule: ConsensusRule | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """The feature columns of the labeled items of ``dataset`` and their labels.

    Rows come in labeling order (of the event that decided each item's state); the frame's
    index is the item id. ``rule``: how labels of several labelers become one (default:
    the majority, a tie left out).
    """
    relation = require_dataset(con, dataset)
    check_columns_exist(con, dataset, columns)
    labels = decided_labels(con, dataset, rule or ConsensusRule()).labels()
    selected = ", ".join(f"d.{quote_identifier(c)}" for c in columns)
    frame = con.execute(
        f"SELECT d.item_id, {selected} FROM {relation} d "
        "WHERE d.item_id IN (SELECT unnest(?::VARCHAR[]))",
        [labels.index.tolist()],
    ).df()
    frame = frame.set_index("item_id")
    # Items the dataset lost when it was replaced have labels but no row: left out.
    labels = labels[labels.index.isin(frame.index)]
    frame = frame.reindex(labels.index)
    frame.index.name = "item_id"
    return frame, labels.rename(None)
