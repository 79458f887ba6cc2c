"""Label quality as ``monitor`` and the dashboard show it: per labeler and per pair (from the
monitoring recipe's rows of the newest model version), what became of the likely label
errors, and the reviewers' decisions so far (both read from the store as they are now).

Reads only; a store written before reviews existed (opened read-only) shows none.
"""

from __future__ import annotations

import math

import pandas as pd

from active_labeling.flow.label_errors import suspect_outcomes
from active_labeling.store.consensus import review_column

#: The per-labeler columns, in order.
LABELER_TABLE = (
    "annotator",
    "labels",
    "labels_per_hour",
    "consensus_agreement",
    "consensus_items",
    "review_agreement",
    "reviewed_items",
)
_PER_LABELER = {
    "labels_per_hour": ("labels_per_hour", "n_labels", "labels"),
    "labeler_consensus_agreement": ("consensus_agreement", "n_items", "consensus_items"),
    "labeler_review_agreement": ("review_agreement", "n_items", "reviewed_items"),
}


def _newest(history: pd.DataFrame) -> pd.DataFrame:
    """The rows of each model's newest measured version."""
    if history.empty:
        return history
    order = pd.to_numeric(history["model_version"], errors="coerce")
    newest = history.assign(_order=order).groupby("model_name")["_order"].transform("max")
    return history[order == newest]


def labeler_table(history: pd.DataFrame) -> pd.DataFrame:
    """Per labeler, as of the newest model version: labels, labels per hour, agreement with
    the consensus and with the reviewers (and on how many items)."""
    rows: dict[str, dict] = {}
    for row in _newest(history).itertuples(index=False):
        spec = _PER_LABELER.get(row.metric)
        if spec is None or "annotator" not in row.details:
            continue
        column, count_key, count_column = spec
        entry = rows.setdefault(row.details["annotator"], {"annotator": row.details["annotator"]})
        entry[column] = row.value
        if count_key in row.details:
            entry[count_column] = row.details[count_key]
    table = pd.DataFrame(list(rows.values()), columns=list(LABELER_TABLE))
    for column in ("labels", "consensus_items", "reviewed_items"):
        table[column] = table[column].astype("Int64")
    return table.sort_values("annotator", kind="stable").reset_index(drop=True)


def pair_table(history: pd.DataFrame) -> pd.DataFrame:
    """Cohen's kappa of each pair of labelers, as of the newest model version."""
    rows = [
        {
            "annotators": row.details.get("annotators"),
            "n_items": row.details.get("n_items"),
            "agreement": row.details.get("agreement"),
            "kappa": row.value,
        }
        for row in _newest(history).itertuples(index=False)
        if row.metric == "labeler_pair_kappa"
    ]
    return pd.DataFrame(rows, columns=["annotators", "n_items", "agreement", "kappa"])


def review_decisions(con, dataset: str | None = None) -> dict[str, int]:
    """How many decisions of each kind (accepted, corrected, sent_back) the store holds."""
    if review_column(con) != "review":
        return {}
    where, args = ("AND dataset = ?", [dataset]) if dataset is not None else ("", [])
    rows = con.execute(
        f"SELECT review, count(*) FROM label_events WHERE review IS NOT NULL {where} "
        "GROUP BY review ORDER BY review",
        args,
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def quality_summary(con, history: pd.DataFrame, dataset: str | None = None) -> dict:
    """Everything above as JSON-ready lists (the dashboard's ``label_quality``)."""

    def plain(frame: pd.DataFrame) -> list[dict]:
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        return [
            {
                k: (
                    None
                    if isinstance(v, float) and not math.isfinite(v)
                    else v.isoformat()
                    if hasattr(v, "isoformat")
                    else v
                )
                for k, v in record.items()
            }
            for record in records
        ]

    return {
        "labelers": plain(labeler_table(history)),
        "pairs": plain(pair_table(history)),
        "suspects": plain(suspect_outcomes(con, dataset)),
        "decisions": review_decisions(con, dataset),
    }
