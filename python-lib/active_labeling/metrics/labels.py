"""Metrics of the labels and the labelers, computed from label events.

Events are rows of the store's ``label_events`` table (``item_id``, ``label``, ``status``
in labeled / skipped / undone, ``annotator``, ``created_at`` in UTC, ``lead_time_ms``, and
optionally ``dataset``, ``event_id``). The latest event of an item decides, as in the
store's ``current_labels`` view: ``event_id`` orders events when present, else
``created_at``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from active_labeling.errors import InputError
from active_labeling.metrics.kappa import cohen_kappa, fleiss_kappa

STATUSES = ("labeled", "skipped", "undone")


def _check_events(events, required: tuple[str, ...], name: str = "events") -> pd.DataFrame:
    if not isinstance(events, pd.DataFrame):
        raise InputError(f"{name} must be a DataFrame of label events, got {type(events).__name__}")
    if events.empty:
        raise InputError(f"{name} is empty: there is no label event to measure")
    missing = [c for c in required if c not in events.columns]
    if missing:
        raise InputError(
            f"{name} lacks column(s) {', '.join(missing)} (the label_events table has "
            "item_id, label, status, annotator, created_at, lead_time_ms)"
        )
    events = events.reset_index(drop=True)
    if "status" in events.columns:
        bad = ~events["status"].isin(STATUSES)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{name} column 'status' has {events['status'].iloc[row]!r} at row {row}; "
                f"expected one of {', '.join(STATUSES)}"
            )
    if "created_at" in events.columns:
        try:
            created = pd.to_datetime(events["created_at"], utc=True)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name} column 'created_at' must hold timestamps: {exc}") from None
        if created.isna().any():
            row = int(np.flatnonzero(created.isna().to_numpy())[0])
            raise InputError(f"{name} column 'created_at' is missing at row {row}")
        events = events.assign(created_at=created)
    if "lead_time_ms" in events.columns:
        try:
            lead = pd.to_numeric(events["lead_time_ms"]).astype("float64")
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name} column 'lead_time_ms' must hold numbers: {exc}") from None
        if (lead < 0).any():
            row = int(np.flatnonzero((lead < 0).to_numpy())[0])
            raise InputError(f"{name} column 'lead_time_ms' is negative at row {row}")
        events = events.assign(lead_time_ms=lead)
    return events


def _in_event_order(events: pd.DataFrame) -> pd.DataFrame:
    """Oldest event first: by event_id when present (append order), else created_at."""
    if "event_id" in events.columns:
        return events.sort_values("event_id", kind="stable")
    if "created_at" in events.columns:
        return events.sort_values("created_at", kind="stable")
    raise InputError("events need an event_id or a created_at column to tell the latest event")


def _item_key(events: pd.DataFrame) -> list[str]:
    return ["dataset", "item_id"] if "dataset" in events.columns else ["item_id"]


def current_labels(events) -> pd.DataFrame:
    """The current label of each item: its latest event, when that event is ``labeled``.

    The same rule as the store's ``current_labels`` view: a later skip or undo leaves the
    item without a label, whoever labeled it before.

    Parameters
    ----------
    events : DataFrame
        Label events with ``item_id``, ``label``, ``status`` and ``event_id`` or
        ``created_at`` (``dataset`` too when events span datasets).

    Returns
    -------
    DataFrame
        One row per labeled item, the columns of ``events``, in event order.

    Examples
    --------
    >>> events = pd.DataFrame({
    ...     "event_id": [1, 2, 3, 4],
    ...     "item_id": ["i1", "i2", "i1", "i2"],
    ...     "label": ["cat", "dog", "bird", None],
    ...     "status": ["labeled", "labeled", "labeled", "undone"],
    ... })
    >>> current_labels(events)[["item_id", "label"]].to_numpy().tolist()
    [['i1', 'bird']]
    """
    events = _check_events(events, ("item_id", "label", "status"))
    latest = _in_event_order(events).drop_duplicates(_item_key(events), keep="last")
    return latest[latest["status"] == "labeled"].reset_index(drop=True)


def class_balance(labels) -> pd.Series:
    """Share of each class among the current labels.

    ``share(k) = n_k / sum_j n_j``. A class far below ``1 / n_classes`` will be hard for the
    model to learn; the labeling team can steer the queue (or a labeler's attention) to it.

    Parameters
    ----------
    labels : array-like, Series or DataFrame
        Current labels, or a DataFrame with a ``label`` column (the ``current_labels``
        view); a DataFrame that also has ``status`` is taken as label events and reduced
        to current labels first. Missing labels are left out.

    Returns
    -------
    Series named ``share``, indexed by class, largest share first (ties by class).

    Examples
    --------
    >>> class_balance(["cat", "dog", "cat", "cat"]).to_dict()
    {'cat': 0.75, 'dog': 0.25}
    """
    if isinstance(labels, pd.DataFrame):
        if "status" in labels.columns:
            labels = current_labels(labels)
        if "label" not in labels.columns:
            raise InputError("labels lacks a 'label' column")
        values = labels["label"]
    else:
        if np.ndim(labels) != 1:
            raise InputError(f"labels must be 1-D, got shape {np.shape(labels)}")
        values = pd.Series(labels)
    values = values.dropna()
    if values.empty:
        raise InputError("labels is empty: there is no label to count")
    counts = values.value_counts()
    table = pd.DataFrame({"label": counts.index, "n": counts.to_numpy()})
    table = table.sort_values(["n", "label"], ascending=[False, True], kind="stable")
    share = pd.Series(
        table["n"].to_numpy() / table["n"].sum(), index=pd.Index(table["label"]), name="share"
    )
    share.index.name = "label"
    return share


def labels_per_hour(
    events, by: str | None = "annotator", *, idle_gap_s: float = 300.0, freq: str | None = None
) -> pd.DataFrame:
    """Labels per hour of active work, per labeler (or per any column).

    Active time counts the time spent on each event: the gap since the same annotator's
    previous event when it is at most ``idle_gap_s`` (5 minutes by default); after a longer
    pause (a break) or for the first event, the event's own lead time when known (capped at
    ``idle_gap_s``), else nothing. Then ``labels_per_hour = n_labels / active_hours``, where
    ``n_labels`` counts ``labeled`` events (skips and undos take time but add no label).
    Long pauses therefore do not dilute the rate, and a label's minutes are not counted
    twice.

    Parameters
    ----------
    events : DataFrame
        Label events with ``annotator``, ``status``, ``created_at`` and optionally
        ``lead_time_ms`` (and the ``by`` column).
    by : str or None
        Column to group by (default ``annotator``); None for the whole team.
    idle_gap_s : float
        Longest gap still counted as work, in seconds.
    freq : str, optional
        A pandas frequency (``"1h"``, ``"1D"``): one row per group and period, with
        ``period_start``, for plotting the rate over time.

    Returns
    -------
    DataFrame
        Columns ``by`` (and ``period_start``), ``n_labels``, ``n_events``,
        ``active_hours``, ``labels_per_hour`` (NaN when no active time was measured).

    Examples
    --------
    Gaps of 30 s, 30 s, then a break of almost an hour; the first and the last event
    count their lead times (20 s, 40 s): 120 s of work for 4 labels, 120 labels per hour.

    >>> events = pd.DataFrame({
    ...     "annotator": ["ann"] * 4,
    ...     "status": ["labeled"] * 4,
    ...     "created_at": pd.to_datetime(
    ...         ["2024-01-01 10:00:00", "2024-01-01 10:00:30",
    ...          "2024-01-01 10:01:00", "2024-01-01 11:00:00"], utc=True),
    ...     "lead_time_ms": [20_000, 25_000, 25_000, 40_000],
    ... })
    >>> labels_per_hour(events)[["annotator", "n_labels", "labels_per_hour"]].to_numpy().tolist()
    [['ann', 4, 120.0]]
    """
    if idle_gap_s is None or not float(idle_gap_s) > 0:
        raise InputError(f"idle_gap_s must be a positive number of seconds, got {idle_gap_s!r}")
    required = ("annotator", "status", "created_at") + ((by,) if by is not None else ())
    events = _check_events(events, tuple(dict.fromkeys(required)))
    events = events.sort_values(["annotator", "created_at"], kind="stable")
    gap = events.groupby("annotator", sort=False)["created_at"].diff().dt.total_seconds()
    if "lead_time_ms" in events.columns:
        own = (events["lead_time_ms"] / 1000.0).clip(upper=idle_gap_s).fillna(0.0)
    else:
        own = pd.Series(0.0, index=events.index)
    work = gap.where(gap <= idle_gap_s, own)
    events = events.assign(
        _work_s=work.fillna(own), _labeled=(events["status"] == "labeled").astype(int)
    )
    keys = [by] if by is not None else []
    if freq is not None:
        try:
            events = events.assign(period_start=events["created_at"].dt.floor(freq))
        except (TypeError, ValueError) as exc:
            raise InputError(f"freq={freq!r} is not a pandas frequency: {exc}") from None
        keys.append("period_start")
    if keys:
        grouped = events.groupby(keys, sort=True, dropna=False)
        table = grouped.agg(
            n_labels=("_labeled", "sum"), n_events=("_labeled", "size"), work=("_work_s", "sum")
        ).reset_index()
    else:
        table = pd.DataFrame(
            {
                "n_labels": [int(events["_labeled"].sum())],
                "n_events": [len(events)],
                "work": [float(events["_work_s"].sum())],
            }
        )
    table["active_hours"] = table.pop("work") / 3600.0
    hours = table["active_hours"].where(table["active_hours"] > 0)
    table["labels_per_hour"] = table["n_labels"] / hours
    return table


def median_lead_time(events) -> float:
    """Median time a labeler took per label, in seconds.

    The median of ``lead_time_ms / 1000`` over ``labeled`` events that carry a lead time
    (the time from showing an item to answering it). The median, not the mean: one item
    left open over lunch would move a mean by minutes. NaN when no labeled event has a
    lead time.

    Parameters
    ----------
    events : DataFrame
        Label events with ``status`` and ``lead_time_ms``.

    Returns
    -------
    float

    Examples
    --------
    >>> events = pd.DataFrame({
    ...     "status": ["labeled", "labeled", "skipped", "labeled"],
    ...     "lead_time_ms": [2_000, 4_000, 60_000, 3_000],
    ... })
    >>> median_lead_time(events)
    3.0
    """
    events = _check_events(events, ("status", "lead_time_ms"))
    lead = events.loc[events["status"] == "labeled", "lead_time_ms"].dropna()
    if lead.empty:
        return float("nan")
    return float(lead.median() / 1000.0)


def labeler_agreement(events) -> dict:
    """Agreement between labelers on the items two or more of them labeled.

    Each annotator's latest event on an item gives their label (an annotator whose latest
    event is a skip or an undo has none). Items with labels from at least two annotators
    are compared:

    - exactly two annotators overall: Cohen's kappa between them (``method="cohen"``);
    - more: Fleiss' kappa over the items x classes count table (``method="fleiss"``,
      see :func:`fleiss_kappa`), which allows different raters on different items.

    Kappa reads: 1 perfect, 0 chance level; as a rough guide (Landis and Koch 1977), above
    0.6 substantial, above 0.8 almost perfect. Low kappa on the overlap means the
    guidelines or the classes are ambiguous, and the model learns from noisy labels.

    Parameters
    ----------
    events : DataFrame
        Label events with ``item_id``, ``label``, ``status``, ``annotator`` and
        ``event_id`` or ``created_at`` (``dataset`` too when events span datasets).

    Returns
    -------
    dict
        ``{"kappa": float, "method": "cohen" | "fleiss" | None, "n_items": int,
        "n_annotators": int}``; kappa is NaN (method None) with no item labeled twice, and
        NaN when every label on the overlap is one and the same class.

    Examples
    --------
    >>> events = pd.DataFrame({
    ...     "event_id": range(1, 9),
    ...     "item_id": ["a", "a", "b", "b", "c", "c", "d", "d"],
    ...     "annotator": ["ann", "bob"] * 4,
    ...     "label": ["x", "x", "x", "y", "y", "y", "y", "y"],
    ...     "status": ["labeled"] * 8,
    ... })
    >>> labeler_agreement(events)
    {'kappa': 0.5, 'method': 'cohen', 'n_items': 4, 'n_annotators': 2}
    """
    events = _check_events(events, ("item_id", "label", "status", "annotator"))
    item = _item_key(events)
    latest = _in_event_order(events).drop_duplicates([*item, "annotator"], keep="last")
    labeled = latest[(latest["status"] == "labeled") & latest["label"].notna()]
    raters = labeled.groupby(item, sort=False)["annotator"].transform("size")
    overlap = labeled[raters >= 2]
    annotators = sorted(overlap["annotator"].unique())
    n_items = int(overlap.groupby(item, sort=False).ngroups) if len(overlap) else 0
    if n_items == 0:
        return {"kappa": float("nan"), "method": None, "n_items": 0, "n_annotators": 0}
    if len(annotators) == 2:
        wide = overlap.pivot_table(index=item, columns="annotator", values="label", aggfunc="first")
        kappa = cohen_kappa(wide[annotators[0]].to_numpy(), wide[annotators[1]].to_numpy())
        method = "cohen"
    else:
        counts = overlap.groupby([*item, "label"], sort=False).size().unstack(fill_value=0)
        kappa = fleiss_kappa(counts.to_numpy())
        method = "fleiss"
    return {
        "kappa": float(kappa),
        "method": method,
        "n_items": n_items,
        "n_annotators": len(annotators),
    }
