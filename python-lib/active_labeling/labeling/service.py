"""The labeling service: hand items out under leases, write every action as one event.

The server owns the store; every read and write goes through one connection under one
lock, so a handout and its lease are decided atomically and no item is leased to two
labelers at once. Each write is one transaction, committed before the request is
acknowledged. Leases live in the store, so a restart neither loses nor duplicates work.
Nothing here updates a label event; nothing rewrites a table.

Which items are free is also kept in memory (``handout.HandoutIndex``), built from the
store at start and told of every write after it commits, so that a handout costs no
aggregate over the label events. The latest queue generation is looked up at most once a
second (``GENERATION_TTL``), or at once after ``refresh()``.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from active_labeling.errors import ActiveLabelingError, InputError
from active_labeling.flow.project import Project
from active_labeling.labeling import annotations
from active_labeling.labeling.handout import HandoutIndex, Lease
from active_labeling.labeling.hints import Hints
from active_labeling.store import item_state
from active_labeling.store.connection import transaction
from active_labeling.store.datasets import require_dataset, table_of
from active_labeling.store.labels import record_item_state

DEFAULT_LEASE_MINUTES = 10
#: Seconds between two looks for a newer queue generation.
GENERATION_TTL = 1.0
# s, z and h are taken (skip, undo, hint).
_KEYS = [str(d) for d in range(1, 10)] + [c for c in "abcdefgijklmnopqrtuvwxy"]


class NotFoundError(ActiveLabelingError):
    """No such item, or nothing to undo."""


class ConflictError(ActiveLabelingError):
    """The item is leased to another labeler."""


def class_keys(classes: list[str]) -> dict[str, str]:
    """The key of each class: 1..9, then letters (s, z and h are taken: skip, undo, hint)."""
    return {label: key for label, key in zip(classes, _KEYS, strict=False)}


def encode_labels(labels: list[str], classes: list[str]) -> str:
    """A multi-label value: the chosen classes as a JSON list, in class order.

    >>> encode_labels(["dog", "cat", "dog"], ["cat", "bird", "dog"])
    '["cat", "dog"]'
    """
    chosen = set(labels)
    return json.dumps([c for c in classes if c in chosen])


def decode_labels(value: str | None, classes: list[str]) -> list[str]:
    """The classes of a multi-label value; InputError when it is not one."""
    try:
        labels = json.loads(value) if value is not None else None
    except ValueError:
        labels = None
    if not isinstance(labels, list) or any(c not in classes for c in labels):
        raise InputError(f"{value!r} is not a JSON list of the classes ({', '.join(classes)})")
    return labels


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _json_value(value: Any) -> Any:
    """A cell as JSON: NaN and missing values as null, numpy scalars as Python ones."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    return value


#: Active time before the page shows a labeler's pace: one minute.
MIN_ACTIVE_HOURS = 1 / 60


def _labels_per_hour(events: pd.DataFrame, taken_back: list[int]) -> float | None:
    """A labeler's labels per hour of active work (``metrics.labels.labels_per_hour``: the
    gaps between actions up to 5 minutes, the lead time after a pause), over all their
    actions; labels an undo took back took time but count as no label. None until a minute
    of work was measured (two labels in three seconds are not 2,400 an hour)."""
    from active_labeling.metrics.labels import labels_per_hour

    if events.empty:
        return None
    undone = events["event_id"].isin(taken_back) & (events["status"] == "labeled")
    events = events.assign(status=events["status"].where(~undone, "undone"))
    row = labels_per_hour(events, by=None).iloc[0]
    rate = float(row["labels_per_hour"])
    if not math.isfinite(rate) or not float(row["active_hours"]) >= MIN_ACTIVE_HOURS:
        return None
    return rate


@dataclass
class Handout:
    """Items leased to a labeler. ``queue_exhausted``: the ranked queue has no free item
    left, items come in dataset order; ``has_queue`` false: no queue was ever written, items
    come in dataset order from the start (the page says which)."""

    items: list[dict]
    queue_exhausted: bool
    done: bool
    has_queue: bool = True


class LabelingService:
    """Handout, leases and label events for one dataset and its queue."""

    def __init__(
        self,
        project: Project,
        con,
        *,
        dataset: str | None = None,
        queue: str | None = None,
        lease_minutes: float = DEFAULT_LEASE_MINUTES,
        media_column: str | None = None,
        columns: list[str] | None = None,
    ):
        self.project = project
        self.shown_columns = list(columns) if columns else None
        self.con = con
        self.lock = threading.RLock()
        self._local = threading.local()
        self._cursors: list = []
        self.lease = timedelta(minutes=lease_minutes)
        self.classes = list(project.settings.classes)
        self.multi_label = project.settings.multi_label
        self.allow_empty = project.settings.allow_empty
        self.overlap = project.settings.overlap
        if not self.classes:
            raise InputError(
                "the project has no classes: set them in project.toml ([project] classes = "
                "[...]) or with `active-labeling init --classes`"
            )
        self.queue = queue or self._latest_queue()
        self.dataset = dataset or self._queue_dataset() or project.default_dataset()
        self.relation = require_dataset(con, self.dataset)
        self.order_by = "rowid" if self._is_table() else "item_id"
        self.media_column = media_column or annotations.default_media_column(project, self.dataset)
        # What a label is for this dataset's task: a class, spans or boxes (annotations).
        self.task = annotations.task_for(self)
        self._all_columns: list[str] | None = None
        self.index = self._load_index()
        self._generation: tuple | None = None
        self._generation_checked = -math.inf
        # The hint thread opens its cursor under the lock: con.cursor() while con runs a query
        # in another thread fails ("connection is busy").
        self.hints = Hints(project.models_dir, self.cursor_for_command, self.relation)
        self.hints.warm(self.current_generation())
        if self.shown_columns:
            available = {
                row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {self.relation}").fetchall()
            }
            missing = [c for c in self.shown_columns if c not in available]
            if missing:
                raise InputError(f"dataset {self.dataset!r} has no column {missing[0]!r} to show")

    # -- configuration ----------------------------------------------------------------------
    def _latest_queue(self) -> str | None:
        row = self.con.execute(
            "SELECT queue FROM queue_generations ORDER BY generation_id DESC LIMIT 1"
        ).fetchone()
        return row[0] if row else None

    def _queue_dataset(self) -> str | None:
        if self.queue is None:
            return None
        row = self.con.execute(
            "SELECT dataset FROM queue_generations WHERE queue = ? "
            "ORDER BY generation_id DESC LIMIT 1",
            [self.queue],
        ).fetchone()
        return row[0] if row else None

    def _is_table(self) -> bool:
        name = f"dataset_{self.dataset}"
        row = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]
        ).fetchone()
        return bool(row[0])

    def columns(self) -> list[str]:
        """The columns an item card shows (the dataset's columns are read once)."""
        shown = self.shown_columns or self.project.settings.feature_columns
        if shown:
            return list(shown)
        if self._all_columns is None:
            with self.lock:
                described = self.con.execute(f"DESCRIBE SELECT * FROM {self.relation}").fetchall()
            self._all_columns = [row[0] for row in described if row[0] != "item_id"]
        return list(self._all_columns)

    def _load_index(self) -> HandoutIndex:
        touched = self.con.execute(
            "SELECT item_id FROM touched_items WHERE dataset = ?", [self.dataset]
        ).fetchall()
        # Leases on items the dataset lost when it was replaced are left to expire.
        leases = self.con.execute(
            "SELECT item_id, annotator, leased_at, expires_at, generation_id, score, "
            "model_version FROM leases l WHERE dataset = ? AND expires_at > ? AND "
            f"EXISTS (SELECT 1 FROM {self.relation} d WHERE d.item_id = l.item_id)",
            [self.dataset, _now()],
        ).fetchall()
        index = HandoutIndex(
            (r[0] for r in touched),
            {r[0]: Lease(*r[1:]) for r in leases},
            overlap=self.wants_second_label if self.overlap else None,
        )
        # Items a reviewer sent back, not labeled since: their state is the send-back.
        for (item,) in self.con.execute(
            "SELECT s.item_id FROM item_state s JOIN label_events e ON e.event_id = s.event_id "
            "WHERE s.dataset = ? AND s.status = 'undone' AND e.review = 'sent_back' "
            "ORDER BY s.event_id",
            [self.dataset],
        ).fetchall():
            index.returned[item] = None
        if self.overlap:
            chosen = [item for item in index.touched if self.wants_second_label(item)]
            events: dict[str, list] = {}
            for start in range(0, len(chosen), 1000):
                part = chosen[start : start + 1000]
                marks = ", ".join("?" * len(part))
                # Labels loaded with `labels import` are not a labeler's: left out here.
                for row in self.con.execute(
                    f"SELECT item_id, event_id, {item_state.REPLAY_STATUS}, label, annotator, "
                    f"created_at FROM label_events WHERE dataset = ? AND item_id IN ({marks}) "
                    "AND coalesce(session, '') NOT LIKE 'import-%' ORDER BY event_id",
                    [self.dataset, *part],
                ).fetchall():
                    events.setdefault(row[0], []).append(row[1:])
            # Waiting items in the order of their (first kept) label, as before the restart.
            kept = {item: item_state.stack(its) for item, its in events.items()}
            for item in sorted(kept, key=lambda i: kept[i][0][0] if kept[i] else 0):
                index.set_labelers(item, item_state.labelers(events[item]))
        return index

    def wants_second_label(self, item_id: str) -> bool:
        """Whether the item is one of the ``overlap`` share that two labelers label.

        A fixed draw per item id (stable across restarts and queue generations)."""
        digest = hashlib.sha256(f"overlap\0{self.dataset}\0{item_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") < self.overlap * 2**64

    def cursor(self):
        """This thread's own connection to the store, for reads and writes that need not
        wait for the service's lock (logins, sessions, tokens): one per thread, reused."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            with self.lock:
                cursor = self._local.cursor = self.con.cursor()
                self._cursors.append(cursor)
        return cursor

    def cursor_for_command(self):
        """A new cursor on the store, for a command the server runs (closed by its user)."""
        with self.lock:
            return self.con.cursor()

    def reload(self) -> None:
        """Rebuild the handout's index from the store (after writes that bypassed it)."""
        with self.lock:
            self.index = self._load_index()
            self._generation = None
            self._generation_checked = -math.inf

    def close(self) -> None:
        """Close the store: stop the hint thread, close the threads' cursors, then the
        connection. (The hint thread takes the lock to open its cursor: it is stopped
        before the lock is taken here.)"""
        self.hints.close()
        with self.lock:
            for cursor in self._cursors:
                cursor.close()
            self._cursors.clear()
            self.con.close()

    def refresh(self) -> None:
        """Look for a newer queue generation on the next request (after writing one)."""
        with self.lock:
            self._generation_checked = -math.inf

    def current_generation(self) -> tuple[int, str | None, str | None] | None:
        """The latest generation, looked up at most once per ``GENERATION_TTL`` seconds.

        A newer one replaces the queue in the handout index; labelers keep their leases.
        """
        with self.lock:
            clock = time.monotonic()
            if clock - self._generation_checked < GENERATION_TTL:
                return self._generation
            self._generation_checked = clock
            latest = self.latest_generation()
            if latest != self._generation:
                rows = []
                if latest is not None:
                    # Only items still in the dataset (it may have been replaced since).
                    rows = self.con.execute(
                        "SELECT q.item_id, q.score FROM queue q WHERE q.generation_id = ? AND "
                        f"EXISTS (SELECT 1 FROM {self.relation} d WHERE d.item_id = q.item_id) "
                        "ORDER BY q.rank",
                        [latest[0]],
                    ).fetchall()
                self.index.set_queue(
                    latest[0] if latest else None, [r[0] for r in rows], [r[1] for r in rows]
                )
                self._generation = latest
            return self._generation

    def latest_generation(self) -> tuple[int, str | None, str | None] | None:
        """(generation id, model name, model version) of the queue's latest generation.

        With no queue yet (none chosen, none written when the server started), the first
        queue written for the dataset becomes the one served.
        """
        if self.queue is None:
            row = self.con.execute(
                "SELECT queue FROM queue_generations WHERE dataset = ? "
                "ORDER BY generation_id DESC LIMIT 1",
                [self.dataset],
            ).fetchone()
            if row is None:
                return None
            self.queue = row[0]
        row = self.con.execute(
            "SELECT generation_id, model_name, model_version FROM queue_generations "
            "WHERE queue = ? ORDER BY generation_id DESC LIMIT 1",
            [self.queue],
        ).fetchone()
        return tuple(row) if row else None

    # -- handout ----------------------------------------------------------------------------
    def next_items(self, user: str, count: int = 1, *, hint: bool = True) -> Handout:
        """The user's leased items first, then the best free ones; leased to the user."""
        count = max(1, min(int(count), 20))
        with self.lock:
            now = _now()
            expires = now + self.lease
            generation = self.current_generation()
            index = self.index
            held = index.held_by(user, now)
            chosen = held[:count]
            need = count - len(chosen)
            new: list[tuple[str, int | None, float | None, str | None]] = []
            if need > 0 and index.returned:  # what a reviewer sent back comes first
                returned = [i for i in index.returned_items(user, need + len(held), now)]
                returned = [i for i in returned if i not in held][:need]
                new += [(i, None, None, None) for i in returned]
                need -= len(returned)
            if need > 0 and self.overlap:  # second opinions next, while they are fresh
                seconds = index.second_labels(user, need + len(held) + len(new), now)
                picked = set(held) | {c[0] for c in new}
                seconds = [i for i in seconds if i not in picked][:need]
                gen, version = (generation[0], generation[2]) if generation else (None, None)
                new += [(i, gen, index.score(i), version) for i in seconds]
                need -= len(seconds)
            queue_exhausted = False
            if need > 0 and generation is not None:
                picks = index.free_in_queue(need, now)
                new += [(item, generation[0], index.score(item), generation[2]) for item in picks]
                need -= len(picks)
                queue_exhausted = need > 0
            if need > 0:
                # Items picked above are not leased in the store yet: leave them out here.
                taken = set(chosen) | {c[0] for c in new}
                rows = self.con.execute(
                    f"SELECT d.item_id FROM {self.relation} d WHERE NOT EXISTS "
                    "(SELECT 1 FROM touched_items t WHERE t.dataset = ? AND "
                    "t.item_id = d.item_id) AND NOT EXISTS (SELECT 1 FROM leases l WHERE "
                    "l.dataset = ? AND l.item_id = d.item_id AND l.expires_at > ?) "
                    f"ORDER BY d.{self.order_by} LIMIT ?",
                    [self.dataset, self.dataset, now, need + len(taken)],
                ).fetchall()
                fresh = [r[0] for r in rows if r[0] not in taken][:need]
                new += [(item, None, None, None) for item in fresh]
            # leased_at one microsecond apart keeps the handout's order for later.
            leased = [
                (item, generation_id, score, version, now + timedelta(microseconds=i))
                for i, (item, generation_id, score, version) in enumerate(new)
            ]
            with transaction(self.con):
                if held:
                    self.con.execute(
                        "UPDATE leases SET expires_at = ? WHERE dataset = ? AND annotator = ? "
                        "AND expires_at > ?",
                        [expires, self.dataset, user, now],
                    )
                if leased:
                    self.con.executemany(
                        "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            [self.dataset, item, user, gen, score, version, at, expires]
                            for item, gen, score, version, at in leased
                        ],
                    )
            if held:
                index.renew(user, now, expires)
            for item, gen, score, version, at in leased:
                index.lease(
                    item, user, at, expires, generation_id=gen, score=score, model_version=version
                )
            rows = self._read_items(chosen + [c[0] for c in new], labels=False)
        items = self._assemble(rows, hint=hint, generation=generation)
        return Handout(items, queue_exhausted, done=not items, has_queue=generation is not None)

    def heartbeat(self, user: str, item_id: str) -> datetime:
        """Extend the user's lease on an item (while it is on screen).

        Only a lease handed out to the user is renewed: a heartbeat never leases an item
        (else one labeler could hold the whole queue)."""
        with self.lock:
            now = _now()
            expires = now + self.lease
            self._check_not_leased_to_other(item_id, user, now)
            kept = self.index.leases.get(item_id)
            if kept is None or kept.annotator != user:
                raise ConflictError(
                    f"item {item_id!r} is not handed out to you (or your hold on it expired): "
                    "ask for the next item"
                )
            with transaction(self.con):
                self.con.execute(
                    "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        self.dataset,
                        item_id,
                        user,
                        kept.generation_id,
                        kept.score,
                        kept.model_version,
                        kept.leased_at,
                        expires,
                    ],
                )
            self.index.lease(
                item_id,
                user,
                kept.leased_at,
                expires,
                generation_id=kept.generation_id,
                score=kept.score,
                model_version=kept.model_version,
            )
            return expires

    # -- writes -----------------------------------------------------------------------------
    def _check_item(self, item_id: str) -> None:
        found = self.con.execute(
            f"SELECT 1 FROM {self.relation} WHERE item_id = ? LIMIT 1", [item_id]
        ).fetchone()
        if not found:
            raise NotFoundError(f"no item {item_id!r} in dataset {self.dataset!r}")

    def _check_not_leased_to_other(self, item_id: str, user: str, now: datetime) -> None:
        self._check_item(item_id)
        holder = self.index.holder(item_id, now)
        if holder is not None and holder != user:
            raise ConflictError(f"item {item_id!r} is being labeled by someone else")

    def _check_not_reviewed(self, item_id: str) -> None:
        """A reviewer's decision is final: labelers no longer change the item."""
        state = self.con.execute(
            "SELECT status, annotator, label FROM item_state WHERE dataset = ? AND item_id = ?",
            [self.dataset, item_id],
        ).fetchone()
        if state is not None and state[0] == "reviewed":
            raise ConflictError(
                f"item {item_id!r} was reviewed by {state[1]} (label {state[2]!r}): a "
                "reviewer's decision is final"
            )

    def _check_own_item(self, item_id: str, user: str) -> None:
        """An item someone already labeled or skipped, not handed to ``user``: ``user`` may
        change it only when it is one of theirs (going back to an earlier item)."""
        mine = self.con.execute(
            "SELECT 1 FROM label_events WHERE dataset = ? AND item_id = ? AND annotator = ? "
            "LIMIT 1",
            [self.dataset, item_id, user],
        ).fetchone()
        if mine is None:
            raise ConflictError(
                f"item {item_id!r} was labeled by someone else and is not handed out to you"
            )

    def label_value(self, label: str | None, labels: list[str] | None) -> str | None:
        """What a label event stores: the class, or in a multi-label project the chosen
        classes as a JSON list in the project's class order (an empty list: none apply)."""
        if not self.multi_label:
            if labels is not None:
                raise InputError("this project takes one class per item: send 'label'")
            return label
        if labels is None:
            raise InputError("this project is multi-label: send 'labels', a list of classes")
        unknown = [c for c in labels if c not in self.classes]
        if unknown:
            raise InputError(
                f"label {unknown[0]!r} is not one of the classes ({', '.join(self.classes)})"
            )
        if not labels and not self.allow_empty:
            raise InputError(
                "labels: choose at least one class (this project has allow_empty = false)"
            )
        return encode_labels(labels, self.classes)

    def record(
        self,
        user: str,
        item_id: str,
        *,
        status: str,
        label: str | None = None,
        comment: str | None = None,
        lead_time_ms: int | None = None,
        session: str | None = None,
    ) -> int:
        """Append one event (labeled or skipped) in one transaction; returns its id."""
        if status == "labeled" and self.task.structured:
            pass  # checked against the item below (annotations)
        elif status == "labeled" and self.multi_label:
            decode_labels(label, self.classes)  # raises on anything but a list of classes
        elif status == "labeled" and label not in self.classes:
            raise InputError(
                f"label {label!r} is not one of the classes ({', '.join(self.classes)})"
            )
        if lead_time_ms is not None and lead_time_ms < 0:
            raise InputError("lead_time_ms must not be negative")
        with self.lock:
            self._check_not_leased_to_other(item_id, user, _now())
            self._check_not_reviewed(item_id)
            if status == "labeled" and self.task.structured:  # spans, boxes: fit the item?
                label = self.task.check(item_id, label)
            lease = self.index.leases.get(item_id)
            if (lease is None or lease.annotator != user) and item_id in self.index.touched:
                self._check_own_item(item_id, user)
            shown = (lease.model_version, lease.score) if lease else (None, None)
            with transaction(self.con):
                event_id = self._append(
                    item_id, user, status, label, session, comment, lead_time_ms, shown
                )
                self.con.execute(
                    "DELETE FROM leases WHERE dataset = ? AND item_id = ?",
                    [self.dataset, item_id],
                )
            self.index.recorded(item_id, status, user)
        return event_id

    def _append(self, item_id, user, status, label, session, comment, lead_time_ms, shown):
        """One event and the item's new state (call inside a transaction); its event id."""
        event_id, created_at = self.con.execute(
            "INSERT INTO label_events (dataset, item_id, label, status, annotator, session, "
            "comment, lead_time_ms, model_version, queue_score) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING event_id, created_at",
            [
                self.dataset,
                item_id,
                label,
                status,
                user,
                session,
                comment,
                lead_time_ms,
                shown[0],
                shown[1],
            ],
        ).fetchone()
        record_item_state(
            self.con,
            dataset=self.dataset,
            item_id=item_id,
            event_id=event_id,
            status=status,
            label=label,
            annotator=user,
            created_at=created_at,
        )
        return event_id

    def undo(self, user: str, session: str | None = None) -> tuple[dict, dict]:
        """Undo the user's latest labeling action: an ``undone`` event.

        The item goes back to its state before that action (unlabeled, or the earlier
        label when the action was a relabel) and is leased to the user to look at again.
        """
        with self.lock:
            # The user's latest action that still decides its item's state.
            row = self.con.execute(
                "SELECT item_id, label, status FROM item_state WHERE dataset = ? "
                "AND annotator = ? AND status IN ('labeled', 'skipped') "
                "ORDER BY event_id DESC LIMIT 1",
                [self.dataset, user],
            ).fetchone()
            if row is None:
                raise NotFoundError("nothing to undo")
            item_id, label, status = row
            now = _now()
            # An overlap item may be with its second labeler by now: it stays with them.
            take = self.index.holder(item_id, now) in (None, user)
            with transaction(self.con):
                self.con.execute(
                    "INSERT INTO label_events (dataset, item_id, status, annotator, session) "
                    "VALUES (?, ?, 'undone', ?, ?)",
                    [self.dataset, item_id, user, session],
                )
                state = item_state.settle(self.con, self.dataset, item_id)
                labelers = None
                if self.overlap and self.wants_second_label(item_id):
                    events = item_state.item_events(self.con, self.dataset, item_id)
                    labelers = item_state.labelers(events)
                if take:
                    self.con.execute(
                        "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, NULL, NULL, NULL, ?, ?)",
                        [self.dataset, item_id, user, now, now + self.lease],
                    )
            if labelers is not None:  # memory follows the store only once it committed
                self.index.set_labelers(item_id, labelers)
            self.index.recorded(item_id, state[1], state[3])
            if take:
                self.index.lease(item_id, user, now, now + self.lease)
            return {"item_id": item_id, "label": label, "status": status}, self.item(item_id, user)

    # -- reads ------------------------------------------------------------------------------
    def item(self, item_id: str, user: str | None, *, hint: bool = True) -> dict:
        """An item's card; its current label only when ``user`` gave it (None: whoever)."""
        with self.lock:
            self._check_item(item_id)
            rows = self._read_items([item_id], for_user=user)
            generation = self.current_generation() if hint else None
        return self._assemble(rows, hint=hint, generation=generation)[0]

    def _read_items(
        self, item_ids: list[str], *, labels: bool = True, for_user: str | None = None
    ) -> tuple:
        """The item cards' data (call under the lock): rows, lease, rank, current label, and
        the note of the reviewer who sent an item back.

        ``labels=False`` skips the current labels (a handout gives only untouched items).
        With ``for_user``, an item's current label is shown only when that user gave it: a
        second labeler of an overlap item must not see the first label.
        """
        if not item_ids:
            return item_ids, None, {}, {}, {}
        marks = ", ".join("?" * len(item_ids))
        cursor = self.con.execute(
            f"SELECT * FROM {self.relation} WHERE item_id IN ({marks})", item_ids
        )
        names = [d[0] for d in cursor.description]
        found = {
            r[names.index("item_id")]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()
        }
        # A dataset replaced under the server (`dataset import --replace`) may have lost items
        # that a lease still names: they are left out.
        item_ids = [item_id for item_id in item_ids if item_id in found]
        if not item_ids:
            return item_ids, None, {}, {}, {}
        marks = ", ".join("?" * len(item_ids))
        records = {item_id: found[item_id] for item_id in item_ids}
        meta = {}
        for item_id in item_ids:
            lease = self.index.leases.get(item_id)
            if lease is not None:
                same = lease.generation_id is not None and (
                    lease.generation_id == self.index.generation_id
                )
                rank = self.index.rank(item_id) if same else None
                meta[item_id] = (
                    lease.generation_id,
                    lease.score,
                    lease.model_version,
                    lease.expires_at,
                    rank,
                )
        current = {}
        if labels:
            mine = "" if for_user is None else " AND annotator = ?"
            current = dict(
                self.con.execute(
                    "SELECT item_id, label FROM item_state WHERE dataset = ? AND "
                    f"status IN ('labeled', 'reviewed') AND item_id IN ({marks}){mine}",
                    [self.dataset, *item_ids, *([] if for_user is None else [for_user])],
                ).fetchall()
            )
        returned = [item_id for item_id in item_ids if item_id in self.index.returned]
        notes = {}
        if returned:
            marks = ", ".join("?" * len(returned))
            notes = {
                r[0]: {"reviewer": r[1], "comment": r[2], "at": r[3].isoformat()}
                for r in self.con.execute(
                    "SELECT s.item_id, e.annotator, e.comment, e.created_at FROM item_state s "
                    "JOIN label_events e ON e.event_id = s.event_id WHERE s.dataset = ? AND "
                    f"s.item_id IN ({marks}) AND e.review = 'sent_back'",
                    [self.dataset, *returned],
                ).fetchall()
            }
        return item_ids, records, meta, current, notes

    def _assemble(self, rows: tuple, *, hint: bool, generation) -> list[dict]:
        """Item cards from ``_read_items``; the hints are computed here, outside the lock."""
        item_ids, records, meta, current, notes = rows
        if not item_ids:
            return []
        columns = self.columns()
        predictions = self.hints.for_records(records, generation) if hint else {}
        items = []
        for item_id in item_ids:
            row = records[item_id]
            generation_id, score, model_version, expires_at, rank = meta.get(item_id, (None,) * 5)
            items.append(
                {
                    "item_id": item_id,
                    "dataset": self.dataset,
                    "columns": columns,
                    "values": {c: _json_value(row[c]) for c in columns if c in row},
                    "rank": rank,
                    "score": _json_value(score),
                    "generation_id": generation_id,
                    "model_version": model_version,
                    "prediction": predictions.get(item_id),
                    "lease_expires_at": expires_at.isoformat() if expires_at else None,
                    "current_label": self._shown_label(current.get(item_id)),
                    "sent_back": notes.get(item_id),
                    "media": self._media(row),
                }
            )
        return self.task.decorate(items, records)

    def _shown_label(self, value: str | None):
        """A stored label as the page shows it: a list of classes in multi-label projects."""
        if value is None or not self.multi_label:
            return value
        try:
            return decode_labels(value, self.classes)
        except InputError:  # e.g. labels imported before the project became multi-label
            return [value]

    def _media(self, row: dict) -> dict:
        if not self.media_column or self.media_column not in row:
            return {}
        value = row[self.media_column]
        if not isinstance(value, str) or not value:
            return {}
        return {self.media_column: f"/media/{value.lstrip('/')}"}

    def history(self, user: str, limit: int = 20) -> list[dict]:
        with self.lock:
            rows = self.con.execute(
                "SELECT item_id, label, status, created_at, comment FROM label_events "
                "WHERE dataset = ? AND annotator = ? AND review IS NULL "
                "ORDER BY event_id DESC LIMIT ?",
                [self.dataset, user, max(1, min(int(limit), 500))],
            ).fetchall()
        return [
            {
                "item_id": r[0],
                "label": r[1],
                "status": r[2],
                "created_at": r[3].isoformat(),
                "comment": r[4],
            }
            for r in rows
        ]

    def progress(self, user: str, session: str | None = None) -> dict:
        """The labeling page's counts: the user's items labeled (this session, in all), the
        dataset's, what is left in the queue, and the user's labels per hour of work.

        Labels an undo took back do not count; a relabel counts its item once.
        """
        with self.lock:
            taken = item_state.taken_back(self.con, self.dataset, user)
            mine_session, mine_total = self.con.execute(
                "SELECT count(DISTINCT item_id) FILTER (WHERE session = ?), "
                "count(DISTINCT item_id) FROM label_events WHERE dataset = ? AND annotator = ? "
                "AND status = 'labeled' AND review IS NULL "
                "AND NOT list_contains(?::BIGINT[], event_id)",
                [session, self.dataset, user, taken],
            ).fetchone()
            events = self.con.execute(
                "SELECT event_id, annotator, status, created_at, lead_time_ms FROM label_events "
                "WHERE dataset = ? AND annotator = ? AND review IS NULL "
                "AND coalesce(session, '') NOT LIKE 'import-%'",
                [self.dataset, user],
            ).df()
            total = self.con.execute(
                "SELECT count(*) FROM current_labels WHERE dataset = ?", [self.dataset]
            ).fetchone()[0]
            generation = self.current_generation()
            left = self.index.left_in_queue if generation is not None else None
        return {
            "mine_session": mine_session,
            "mine_total": mine_total,
            "total_labeled": total,
            "left_in_queue": left,
            "labels_per_hour": _labels_per_hour(events, taken),
            "has_queue": generation is not None,
            "queue_exhausted": left == 0,
        }

    def stats(self) -> dict:
        """Per labeler: the items labeled and skipped (an undone action does not count, a
        relabel counts its item once), the items reviewed (a reviewer's decisions) and the
        time of the last action."""
        with self.lock:
            taken = item_state.taken_back(self.con, self.dataset)
            mine = "NOT taken_back AND review IS NULL"
            rows = self.con.execute(
                "SELECT annotator, "
                f"count(DISTINCT item_id) FILTER (WHERE status = 'labeled' AND {mine}), "
                f"count(DISTINCT item_id) FILTER (WHERE status = 'skipped' AND {mine}), "
                "max(created_at), count(DISTINCT item_id) FILTER (WHERE review IS NOT NULL) "
                "FROM (SELECT *, list_contains(?::BIGINT[], event_id) AS "
                "taken_back FROM label_events WHERE dataset = ?) GROUP BY annotator "
                "ORDER BY annotator",
                [taken, self.dataset],
            ).fetchall()
            total = self.con.execute(
                "SELECT count(*) FROM current_labels WHERE dataset = ?", [self.dataset]
            ).fetchone()[0]
        return {
            "labelers": [
                {
                    "annotator": r[0],
                    "labeled": r[1],
                    "skipped": r[2],
                    "reviewed": r[4],
                    "last_at": r[3].isoformat(),
                }
                for r in rows
            ],
            "total_labeled": total,
        }

    def events(self, limit: int = 100) -> list[dict]:
        with self.lock:
            rows = self.con.execute(
                "SELECT event_id, item_id, label, status, annotator, created_at, comment, review "
                "FROM label_events WHERE dataset = ? ORDER BY event_id DESC LIMIT ?",
                [self.dataset, max(1, min(int(limit), 1000))],
            ).fetchall()
        keys = (
            "event_id",
            "item_id",
            "label",
            "status",
            "annotator",
            "created_at",
            "comment",
            "review",
        )
        return [
            {
                k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in zip(keys, r, strict=True)
            }
            for r in rows
        ]

    def export(self, fmt: str, directory: Path) -> Path:
        from active_labeling.store.consensus import ConsensusRule
        from active_labeling.store.labels import export_labels

        if fmt not in ("parquet", "csv"):
            raise InputError(f"format must be parquet or csv, got {fmt!r}")
        stamp = _now().strftime("%Y%m%dT%H%M%S")
        rule = ConsensusRule.for_dataset(self.project, self.dataset)
        with self.lock:
            return export_labels(self.con, self.dataset, directory / f"labels-{stamp}.{fmt}", rule)

    def count_items(self) -> int:
        with self.lock:
            return self.con.execute(f"SELECT count(*) FROM {table_of(self.dataset)}").fetchone()[0]
