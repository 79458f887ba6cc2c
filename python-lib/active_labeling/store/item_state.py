"""``item_state``: each item's current state, kept beside the append-only ``label_events``.

The events are replayed as a stack: ``labeled`` and ``skipped`` push, ``undone`` pops. The
item's state is the top of the stack (its event id, status, label, annotator), or, when the
stack is empty, the ``undone`` event that emptied it (status ``undone``: as if never
touched). So undoing a relabel gives the earlier label back, and undoing again frees the
item. Every writer appends its events and updates ``item_state`` in one transaction.

A reviewer's decision (``label_events.review``) is replayed under its own status
(:data:`REPLAY_STATUS`): an accepted or corrected label pushes as ``reviewed`` (the item's
state, with the decided label), a send-back empties the stack (the item goes back to
labeling as if never touched; the labels before it no longer count). A decision is final:
a labeler's action after it (an import, say) stays in the log and changes nothing; only
another decision does.

Examples
--------
>>> from datetime import datetime
>>> t = datetime(2026, 1, 1)
>>> replay([(1, "labeled", "cat", "ann", t), (2, "labeled", "dog", "ann", t),
...         (3, "undone", None, "ann", t)])
(1, 'labeled', 'cat', 'ann', datetime.datetime(2026, 1, 1, 0, 0))
>>> replay([(1, "skipped", None, "ann", t), (2, "undone", None, "ann", t)])[:2]
(2, 'undone')
>>> replay([(1, "labeled", "cat", "ann", t), (2, "reviewed", "dog", "rev", t)])[1:3]
('reviewed', 'dog')
>>> replay([(1, "labeled", "cat", "ann", t), (2, "sent_back", None, "rev", t)])[:2]
(2, 'undone')
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

#: (event_id, status, label, annotator, created_at); status as :data:`REPLAY_STATUS` gives it
Event = tuple

#: A label event's status as the replay reads it: a reviewer's accepted or corrected label
#: is ``reviewed``, a send-back ``sent_back``; a labeler's event keeps its status.
REPLAY_STATUS = (
    "CASE WHEN review = 'sent_back' THEN 'sent_back' "
    "WHEN review IS NOT NULL THEN 'reviewed' ELSE status END"
)


def stack(events: Iterable[Event]) -> list[Event]:
    """The actions of an item that no undo took back and no send-back set aside, oldest
    first."""
    kept: list[Event] = []
    for event in events:
        if kept and kept[-1][1] == "reviewed" and event[1] in ("labeled", "skipped", "undone"):
            continue  # a reviewer's decision is final: only another decision changes it
        if event[1] == "undone":
            if kept:
                kept.pop()
        elif event[1] == "sent_back":
            kept.clear()
        else:
            kept.append(event)
    return kept


def replay(events: Iterable[Event]) -> Event | None:
    """The state an item's events (in event order) leave it in; None without events.

    An empty stack leaves the item ``undone`` (as if never touched), whether an undo or a
    send-back emptied it."""
    events = list(events)
    kept = stack(events)
    if kept:
        return kept[-1]
    if not events:
        return None
    last = events[-1]
    return (last[0], "undone", *last[2:]) if last[1] == "sent_back" else last


def labelers(events: Iterable[Event]) -> set[str]:
    """Who has a label on the item that no undo took back (for agreement between them);
    reviewers' decisions are not labels of a labeler."""
    return {event[3] for event in stack(events) if event[1] == "labeled"}


def taken_back(
    con: duckdb.DuckDBPyConnection, dataset: str, annotator: str | None = None
) -> list[int]:
    """Event ids of the labels and skips that an undo took back (of ``annotator``'s items
    only, when given): counts of "labeled" must leave them out.

    Only items with an ``undone`` event are replayed, so this costs little when undos are
    rare, as they are.
    """
    mine = "AND item_id IN (SELECT item_id FROM label_events WHERE dataset = ? AND annotator = ?)"
    rows = con.execute(
        f"SELECT item_id, event_id, {REPLAY_STATUS} FROM label_events WHERE dataset = ? AND "
        "item_id IN "
        "(SELECT item_id FROM label_events WHERE dataset = ? AND status = 'undone') "
        f"{mine if annotator is not None else ''} ORDER BY item_id, event_id",
        [dataset, dataset, *([dataset, annotator] if annotator is not None else [])],
    ).fetchall()
    taken: list[int] = []
    kept: list[int] = []
    item = None
    for item_id, event_id, status in rows:
        if item_id != item:
            item, kept = item_id, []
        if status == "undone":
            if kept:
                taken.append(kept.pop())
        elif status == "sent_back":  # set aside by a reviewer, not taken back: they count
            kept = []
        else:
            kept.append(event_id)
    return taken


def write_state(con: duckdb.DuckDBPyConnection, dataset: str, item_id: str, state) -> None:
    con.execute(
        "INSERT OR REPLACE INTO item_state VALUES (?, ?, ?, ?, ?, ?, ?)",
        [dataset, item_id, *state],
    )


def item_events(con: duckdb.DuckDBPyConnection, dataset: str, item_id: str) -> list[Event]:
    return con.execute(
        f"SELECT event_id, {REPLAY_STATUS}, label, annotator, created_at FROM label_events "
        "WHERE dataset = ? AND item_id = ? ORDER BY event_id",
        [dataset, item_id],
    ).fetchall()


def settle(con: duckdb.DuckDBPyConnection, dataset: str, item_id: str) -> Event:
    """Replay one item's events into ``item_state`` (call in the appending transaction)."""
    state = replay(item_events(con, dataset, item_id))
    write_state(con, dataset, item_id, state)
    return state


def rebuild(con: duckdb.DuckDBPyConnection) -> int:
    """Recompute ``item_state`` for every item from ``label_events``; returns the items.

    Items whose latest event is not an undo and that no reviewer decided need no replay
    (their state is that event); the others are replayed one by one.
    """
    con.execute("DELETE FROM item_state")
    con.execute(
        f"INSERT INTO item_state SELECT dataset, item_id, event_id, {REPLAY_STATUS}, label, "
        "annotator, created_at FROM label_events QUALIFY row_number() OVER "
        "(PARTITION BY dataset, item_id ORDER BY event_id DESC) = 1"
    )
    undone = con.execute(
        "SELECT dataset, item_id FROM item_state WHERE status IN ('undone', 'sent_back') "
        "UNION SELECT DISTINCT dataset, item_id FROM label_events WHERE review IS NOT NULL"
    ).fetchall()
    for dataset, item_id in undone:
        settle(con, dataset, item_id)
    return con.execute("SELECT count(*) FROM item_state").fetchone()[0]
