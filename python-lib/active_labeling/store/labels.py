"""Label events: append-only. Every action is a new row; the current label is a view.

Nothing here updates or deletes an event. Undo is an ``undone`` event, relabeling is a new
``labeled`` event, a reviewer's decision an event with ``review`` set (``store.consensus``).
An item's current state (``store.item_state``: undo pops the latest action, so undoing a
relabel brings the earlier label back) is kept in ``item_state``, written in the same
transaction as the event: every append goes through this module (or the labeling service,
which calls the same functions).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from active_labeling.errors import InputError
from active_labeling.store import item_state
from active_labeling.store.connection import quote_identifier, transaction
from active_labeling.store.consensus import REVIEWS, ConsensusRule, decided_labels, review_column
from active_labeling.store.datasets import copy_query_to_file, require_dataset, stage_file
from active_labeling.store.label_sets import encode_label_set, parse_label_set

STATUSES = ("labeled", "skipped", "undone")


@dataclass(frozen=True)
class LabelEvent:
    """One labeling action, as written to ``label_events``."""

    dataset: str
    item_id: str
    status: str
    annotator: str
    label: str | None = None
    session: str | None = None
    comment: str | None = None
    lead_time_ms: int | None = None
    model_version: str | None = None
    queue_score: float | None = None
    #: A reviewer's decision: accepted or corrected (status labeled), sent_back (undone).
    review: str | None = None


_EVENT_COLUMNS = (
    "dataset, item_id, label, status, annotator, session, comment, lead_time_ms, "
    "model_version, queue_score, review"
)
#: The status a reviewer's decision is written with.
REVIEW_STATUS = {"accepted": "labeled", "corrected": "labeled", "sent_back": "undone"}


def append_events(con: duckdb.DuckDBPyConnection, events: Iterable[LabelEvent]) -> list[int]:
    """Append events in one transaction; returns their event ids.

    Each item's state is replayed from its events after each append (an undo, a review or
    an action on a reviewed item need it): this is for tests, tools and bulk writers, not
    for the labeling server's hot path."""
    rows = []
    for event in events:
        if event.status not in STATUSES:
            raise InputError(f"status must be one of {STATUSES}, got {event.status!r}")
        if event.status == "labeled" and event.label is None:
            raise InputError(f"item {event.item_id!r}: a 'labeled' event needs a label")
        if event.review is not None and REVIEW_STATUS.get(event.review) != event.status:
            raise InputError(
                f"item {event.item_id!r}: review must be one of {', '.join(REVIEWS)} with "
                f"status {REVIEW_STATUS.get(event.review, 'labeled')!r}, got "
                f"{event.review!r} with {event.status!r}"
            )
        rows.append(
            [
                event.dataset,
                event.item_id,
                event.label,
                event.status,
                event.annotator,
                event.session,
                event.comment,
                event.lead_time_ms,
                event.model_version,
                event.queue_score,
                event.review,
            ]
        )
    ids = []
    with transaction(con):
        for row in rows:
            (event_id,) = con.execute(
                f"INSERT INTO label_events ({_EVENT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
                row,
            ).fetchone()
            item_state.settle(con, row[0], row[1])
            ids.append(event_id)
    return ids


def record_item_state(
    con: duckdb.DuckDBPyConnection,
    *,
    dataset: str,
    item_id: str,
    event_id: int,
    status: str,
    label: str | None,
    annotator: str,
    created_at,
) -> None:
    """Make a labeled or skipped event just appended the item's state (same transaction)."""
    item_state.write_state(con, dataset, item_id, (event_id, status, label, annotator, created_at))


def sync_item_state(con: duckdb.DuckDBPyConnection, dataset: str, *, session: str) -> None:
    """Bring ``item_state`` up to date for the items that ``session``'s events touched.

    For bulk appends (imports) of labeled events; call in the transaction that appended
    them. An item a reviewer decided keeps its state: the decision is final.
    """
    con.execute(
        "INSERT OR REPLACE INTO item_state "
        "SELECT dataset, item_id, event_id, status, label, annotator, created_at "
        "FROM label_events WHERE dataset = ? AND item_id IN "
        "(SELECT item_id FROM label_events WHERE dataset = ? AND session = ?) "
        "AND item_id NOT IN "
        "(SELECT item_id FROM item_state WHERE dataset = ? AND status = 'reviewed') "
        "QUALIFY row_number() OVER (PARTITION BY dataset, item_id ORDER BY event_id DESC) = 1",
        [dataset, dataset, session, dataset],
    )


def import_labels(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    path: Path | str,
    *,
    id_column: str = "id",
    label_column: str = "label",
    classes: list[str] | None = None,
    annotator: str = "import",
    encoding: str = "utf-8",
    ids_note: str = "",
    multi_label: bool = False,
    allow_empty: bool = True,
    annotations: Callable[[list[tuple[str, str, str]]], list[str]] | None = None,
) -> int:
    """Load existing labels (one id and one label per row) as ``labeled`` events.

    Every id must belong to ``dataset`` and appear once; every label must be one of
    ``classes`` when they are given. With ``multi_label`` each label is a label set, a JSON
    list of ``classes`` (``["red", "blue"]``; ``[]`` unless ``allow_empty`` is false), stored
    in the project's class order as the labeling app stores it. One transaction: on any
    error, nothing is written. Returns the number of events appended. ``ids_note`` ends the
    error about an id the dataset does not have (what its ids are).

    A file written by ``labels export`` (it has ``label_source``) imports as it is: its
    disputed items, whose label is empty until a reviewer decides, are left out and counted
    (``ImportedLabels.skipped``).

    ``annotations``: for a spans or boxes dataset, the check of its labels
    (``labeling.annotations.import_check``): it takes (where, item id, label) per row and
    returns each label as stored, or raises naming the row; ``classes`` are its business then.
    """
    if multi_label and not classes:
        raise InputError("a multi-label project needs its classes to import label sets")
    relation = require_dataset(con, dataset)
    staging = quote_identifier("_staging_labels")
    with transaction(con):
        staged = stage_file(con, path, staging, encoding=encoding, id_column=id_column)
        for column in (id_column, label_column):
            if column not in staged.columns:
                raise InputError(
                    f"{staged.path}: no column {column!r}; the columns are "
                    f"{', '.join(staged.columns)} (choose them with --id-column/--label-column)"
                )
        ident, label = quote_identifier(id_column), quote_identifier(label_column)
        skipped = 0
        if "label_source" in staged.columns and label_column == "label":
            # A `labels export` file: its disputed items have no label until reviewed.
            disputed = (
                f"label_source = 'disputed' AND ({label} IS NULL OR CAST({label} AS VARCHAR) = '')"
            )
            skipped = con.execute(f"SELECT count(*) FROM {staging} WHERE {disputed}").fetchone()[0]
            con.execute(f"DELETE FROM {staging} WHERE {disputed}")
            if skipped == staged.rows:
                raise InputError(
                    f"{staged.path}: every item of this export is disputed (no label yet): "
                    "nothing to import"
                )
        bad = con.execute(
            f"SELECT _row, {ident} FROM {staging} WHERE {ident} IS NULL OR {label} IS NULL "
            "ORDER BY _row LIMIT 1"
        ).fetchone()
        if bad:
            what = "id" if bad[1] is None else "label"
            raise InputError(f"{staged.path} row {bad[0]}: the {what} is empty")
        twice = con.execute(
            f"SELECT CAST({ident} AS VARCHAR), _row FROM {staging} "
            f"QUALIFY row_number() OVER (PARTITION BY CAST({ident} AS VARCHAR) ORDER BY _row) = 2 "
            "ORDER BY _row LIMIT 1"
        ).fetchone()
        if twice:
            raise InputError(
                f"{staged.path} row {twice[1]}: id {twice[0]!r} was already given a label above"
            )
        unknown = con.execute(
            f"SELECT s._row, CAST(s.{ident} AS VARCHAR) FROM {staging} s "
            f"ANTI JOIN {relation} d ON d.item_id = CAST(s.{ident} AS VARCHAR) "
            "ORDER BY s._row LIMIT 1"
        ).fetchone()
        if unknown:
            raise InputError(
                f"{staged.path} row {unknown[0]}: id {unknown[1]!r} is not an item of dataset "
                f"{dataset!r}{ids_note}"
            )
        if annotations is not None:
            _normalize_annotations(con, staging, ident, label, staged.path, annotations)
        elif multi_label:
            _normalize_label_sets(con, staging, label, staged.path, classes, allow_empty)
        elif classes:
            outside = con.execute(
                f"SELECT _row, CAST({label} AS VARCHAR) FROM {staging} "
                f"WHERE CAST({label} AS VARCHAR) NOT IN (SELECT unnest(?::VARCHAR[])) "
                "ORDER BY _row LIMIT 1",
                [list(classes)],
            ).fetchone()
            if outside:
                raise InputError(
                    f"{staged.path} row {outside[0]}: label {outside[1]!r} is not one of the "
                    f"project's classes ({', '.join(classes)})"
                )
        session = f"import-{uuid.uuid4().hex[:12]}"
        con.execute(
            f"INSERT INTO label_events (dataset, item_id, label, status, annotator, session) "
            f"SELECT ?, CAST({ident} AS VARCHAR), CAST({label} AS VARCHAR), 'labeled', ?, ? "
            f"FROM {staging} ORDER BY _row",
            [dataset, annotator, session],
        )
        sync_item_state(con, dataset, session=session)
        con.execute(f"DROP TABLE {staging}")
    return ImportedLabels(staged.rows - skipped, skipped)


class ImportedLabels(int):
    """How many labels an import appended (an int), and ``skipped``: the rows of a
    ``labels export`` file left out as disputed (their label is empty until reviewed)."""

    skipped: int

    def __new__(cls, appended: int, skipped: int = 0):
        value = super().__new__(cls, appended)
        value.skipped = skipped
        return value


def _normalize_label_sets(con, staging: str, label: str, path, classes, allow_empty) -> None:
    """Check every staged label set (naming the row of the first bad one) and rewrite it in
    the stored form: a JSON list in the project's class order."""
    rows = con.execute(
        f"SELECT _row, CAST({label} AS VARCHAR) FROM {staging} ORDER BY _row"
    ).fetchall()
    normalized = [
        encode_label_set(
            parse_label_set(value, classes, allow_empty=allow_empty, where=f"{path} row {row}"),
            classes,
        )
        for row, value in rows
    ]
    _rewrite_labels(con, staging, label, [r[0] for r in rows], normalized)


def _rewrite_labels(con, staging: str, label: str, positions: list[int], values: list[str]):
    """Set the staged label of each row position to its value, as text."""
    con.execute(f"ALTER TABLE {staging} ALTER {label} TYPE VARCHAR")
    con.register("_rewritten", pa.table({"_row": positions, "_value": values}))
    try:
        con.execute(
            f"UPDATE {staging} SET {label} = s._value FROM _rewritten s "
            f"WHERE {staging}._row = s._row"
        )
    finally:
        con.unregister("_rewritten")


def _normalize_annotations(con, staging: str, ident: str, label: str, path, check) -> None:
    """Check every staged spans or boxes list against its item (``check``, naming the row
    of the first bad one) and rewrite it as the labeling app stores it. A column of JSON
    text is read as it is; a list column (Parquet's list of structs) as its JSON."""
    types = dict(
        con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {staging})").fetchall()
    )
    name = label.strip('"').replace('""', '"')
    value = f"CAST({label} AS VARCHAR)" if types.get(name) == "VARCHAR" else f"to_json({label})"
    rows = con.execute(
        f"SELECT _row, CAST({ident} AS VARCHAR), {value} FROM {staging} ORDER BY _row"
    ).fetchall()
    normalized = check([(f"{path} row {row}", item, value) for row, item, value in rows])
    _rewrite_labels(con, staging, label, [r[0] for r in rows], normalized)


def current_labels(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    """The current label of each labeled item of ``dataset``: columns item_id, label."""
    return con.execute(
        "SELECT item_id, label FROM current_labels WHERE dataset = ? ORDER BY event_id",
        [dataset],
    ).df()


def labeled_item_ids(con: duckdb.DuckDBPyConnection, dataset: str) -> set[str]:
    rows = con.execute("SELECT item_id FROM current_labels WHERE dataset = ?", [dataset])
    return {row[0] for row in rows.fetchall()}


#: The columns of ``export_labels``, in order: the label and who gave it (the reviewer, the
#: one labeler, or the latest labeler who gave the consensus label), then how it was decided.
LABEL_EXPORT_COLUMNS = (
    "item_id",
    "label",
    "annotator",
    "labeled_at",
    "comment",
    "label_source",
    "consensus_label",
    "consensus_confidence",
    "n_labels",
    "raw_labels",
    "review",
    "reviewer",
    "reviewed_at",
)


def export_labels(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    path: Path | str,
    rule: ConsensusRule | None = None,
) -> Path:
    """Write the label of each item of ``dataset`` (``store.consensus``): a reviewer's
    decision, else the consensus of its labelers, else its one label.

    Columns :data:`LABEL_EXPORT_COLUMNS`: ``label_source`` says which (review, consensus,
    labeler; disputed: labelers who disagree and no decision yet, the label is empty),
    ``consensus_label`` and ``consensus_confidence`` the consensus of items labeled twice
    or more under ``rule``, ``raw_labels`` each labeler's label as a JSON object, ``review``
    the reviewer's decision (accepted, corrected) and who took it when.
    """
    decided = decided_labels(con, dataset, rule or ConsensusRule()).items
    frame = decided.loc[:, list(LABEL_EXPORT_COLUMNS)].astype(
        {"n_labels": "int64", "consensus_confidence": "float64"}
    )
    for column in ("labeled_at", "reviewed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    name = f"_export_labels_{uuid.uuid4().hex[:8]}"
    con.register(name, frame)
    try:
        return copy_query_to_file(
            con, f"SELECT {', '.join(LABEL_EXPORT_COLUMNS)} FROM {name}", Path(path)
        )
    finally:
        con.unregister(name)


#: The columns of ``export_events``, in order.
EVENT_EXPORT_COLUMNS = (
    "event_id, item_id, label, status, review, annotator, session, comment, created_at, "
    "lead_time_ms, model_version, queue_score"
)


def export_events(con: duckdb.DuckDBPyConnection, dataset: str, path: Path | str) -> Path:
    """Write every label event of ``dataset``, oldest first: skips, undos, relabels and
    reviewers' decisions with their comments, lead times and the model version and score
    shown."""
    escaped = dataset.replace("'", "''")
    columns = EVENT_EXPORT_COLUMNS.replace("review,", f"{review_column(con)},")
    query = f"SELECT {columns} FROM label_events WHERE dataset = '{escaped}' ORDER BY event_id"
    return copy_query_to_file(con, query, Path(path))
