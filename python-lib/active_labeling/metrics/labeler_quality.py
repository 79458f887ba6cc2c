"""How good each labeler's labels are: agreement with the consensus, with the reviewers'
decisions, and Cohen's kappa per pair of labelers.

Computed from what ``store.consensus`` decides: ``votes`` (each labeler's live label per
item) and ``items`` (per item, the consensus of its labelers and a reviewer's decision).
A labeler's *consensus agreement* is the share of their labels on items labeled twice or
more that equal the item's consensus, a disputed item (a tie, no consensus) counting as a
disagreement: with two labelers, it is how often the other one agreed. Their *review
agreement* is the share of their labels on items a reviewer decided (accepted or
corrected) that the decision kept: the nearest thing to their accuracy the labels hold.
Pure functions: frames in, frames out.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from active_labeling.metrics.kappa import cohen_kappa

LABELER_COLUMNS = (
    "annotator",
    "n_labels",
    "consensus_items",
    "consensus_agreement",
    "reviewed_items",
    "review_agreement",
)
PAIR_COLUMNS = ("annotator_a", "annotator_b", "n_items", "agreement", "kappa")


def labeler_scores(votes: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per labeler: labels, agreement with the consensus and with the reviewers.

    Parameters
    ----------
    votes : DataFrame
        ``item_id``, ``annotator``, ``label``: each labeler's live label.
    items : DataFrame
        ``item_id``, ``label`` (the decided label), ``consensus_label``, ``n_labels``,
        ``review`` (accepted / corrected, or missing).

    Returns
    -------
    DataFrame
        :data:`LABELER_COLUMNS`, one row per labeler (agreements NaN without such items).

    Examples
    --------
    >>> votes = pd.DataFrame({"item_id": ["a", "a", "b"], "annotator": ["x", "y", "x"],
    ...                       "label": ["cat", "dog", "cat"]})
    >>> items = pd.DataFrame({"item_id": ["a", "b"], "label": [None, "dog"],
    ...                       "consensus_label": [None, None], "n_labels": [2, 1],
    ...                       "review": [None, "corrected"]})
    >>> labeler_scores(votes, items)[["annotator", "consensus_agreement", "review_agreement"]]
      annotator  consensus_agreement  review_agreement
    0         x                  0.0               0.0
    1         y                  0.0               NaN
    """
    joined = votes.merge(
        items[["item_id", "label", "consensus_label", "n_labels", "review"]],
        on="item_id",
        suffixes=("", "_decided"),
    )
    several = joined[joined["n_labels"] >= 2]
    several = several.assign(agrees=several["label"] == several["consensus_label"])
    reviewed = joined[joined["review"].isin(["accepted", "corrected"])]
    reviewed = reviewed.assign(agrees=reviewed["label"] == reviewed["label_decided"])
    rows = []
    for annotator in sorted(votes["annotator"].unique(), key=str):
        mine_c = several[several["annotator"] == annotator]
        mine_r = reviewed[reviewed["annotator"] == annotator]
        rows.append(
            {
                "annotator": annotator,
                "n_labels": int((votes["annotator"] == annotator).sum()),
                "consensus_items": len(mine_c),
                "consensus_agreement": float(mine_c["agrees"].mean()) if len(mine_c) else np.nan,
                "reviewed_items": len(mine_r),
                "review_agreement": float(mine_r["agrees"].mean()) if len(mine_r) else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=list(LABELER_COLUMNS))


def pair_kappas(votes: pd.DataFrame) -> pd.DataFrame:
    """Cohen's kappa (and the raw agreement) of each pair of labelers on the items both
    labeled; pairs without a shared item are left out. Kappa is NaN when both gave one
    and the same class throughout (chance agreement is then 1).

    Examples
    --------
    >>> votes = pd.DataFrame({"item_id": list("aabbccdd"), "annotator": list("xyxyxyxy"),
    ...                       "label": list("ppppnnnp")})
    >>> pair_kappas(votes)[["annotator_a", "annotator_b", "n_items", "agreement", "kappa"]]
      annotator_a annotator_b  n_items  agreement  kappa
    0           x           y        4       0.75    0.5
    """
    wide = votes.pivot_table(index="item_id", columns="annotator", values="label", aggfunc="first")
    rows = []
    for a, b in itertools.combinations(sorted(wide.columns, key=str), 2):
        both = wide[[a, b]].dropna()
        if both.empty:
            continue
        first, second = both[a].to_numpy(), both[b].to_numpy()
        rows.append(
            {
                "annotator_a": a,
                "annotator_b": b,
                "n_items": len(both),
                "agreement": float((first == second).mean()),
                "kappa": float(cohen_kappa(first, second)),
            }
        )
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))
