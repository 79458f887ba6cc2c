"""The labeling service: hand items out under leases, write every action as one event.

The server owns the store; every read and write goes through one connection under one
lock, so a handout and its lease are decided atomically and no item is leased to two
labelers at once. Each write is one transaction, committed before the request is
acknowledged. Leases live in the store, so a restart neither loses nor duplicates work.
Nothing here updates a label event; nothing rewrites a table.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from active_labeling.errors import ActiveLabelingError, InputError
from active_labeling.flow.project import Project
from active_labeling.store.connection import transaction
from active_labeling.store.datasets import require_dataset, table_of

DEFAULT_LEASE_MINUTES = 10
# s, z and h are taken (skip, undo, hint).
_KEYS = [str(d) for d in range(1, 10)] + [c for c in "abcdefgijklmnopqrtuvwxy"]


class NotFoundError(ActiveLabelingError):
    """No such item, or nothing to undo."""


class ConflictError(ActiveLabelingError):
    """The item is leased to another labeler."""


def class_keys(classes: list[str]) -> dict[str, str]:
    """The key of each class: 1..9, then letters (s, z and h are taken: skip, undo, hint)."""
    return {label: key for label, key in zip(classes, _KEYS, strict=False)}


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
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    return value


@dataclass
class Handout:
    items: list[dict]
    queue_exhausted: bool
    done: bool


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
        self.lease = timedelta(minutes=lease_minutes)
        self.classes = list(project.settings.classes)
        if not self.classes:
            raise InputError(
                "the project has no classes: set them in project.toml ([project] classes = "
                "[...]) or with `active-labeling init --classes`"
            )
        self.queue = queue or self._latest_queue()
        self.dataset = dataset or self._queue_dataset() or project.default_dataset()
        self.relation = require_dataset(con, self.dataset)
        self.order_by = "rowid" if self._is_table() else "item_id"
        self.media_column = media_column
        self._model_cache: dict[tuple[str, str], Any] = {}
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
        shown = self.shown_columns or self.project.settings.feature_columns
        if shown:
            return list(shown)
        with self.lock:
            described = self.con.execute(f"DESCRIBE SELECT * FROM {self.relation}").fetchall()
        return [row[0] for row in described if row[0] != "item_id"]

    def latest_generation(self) -> tuple[int, str | None, str | None] | None:
        """(generation id, model name, model version) of the queue's latest generation."""
        if self.queue is None:
            return None
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
            with transaction(self.con):
                held = self.con.execute(
                    "SELECT l.item_id FROM leases l LEFT JOIN queue q ON q.generation_id = "
                    "l.generation_id AND q.item_id = l.item_id WHERE l.dataset = ? AND "
                    "l.annotator = ? AND l.expires_at > ? AND NOT EXISTS (SELECT 1 FROM "
                    "touched_items t WHERE t.dataset = l.dataset AND t.item_id = l.item_id) "
                    "ORDER BY l.leased_at, q.rank NULLS LAST, l.item_id",
                    [self.dataset, user, now],
                ).fetchall()
                chosen = [(r[0], None, None, None) for r in held[:count]]
                self.con.execute(
                    "UPDATE leases SET expires_at = ? WHERE dataset = ? AND annotator = ? "
                    "AND expires_at > ?",
                    [expires, self.dataset, user, now],
                )
                queue_exhausted = False
                generation = self.latest_generation()
                need = count - len(chosen)
                if need > 0 and generation is not None:
                    rows = self.con.execute(
                        "SELECT q.item_id, q.score, q.generation_id, q.model_version FROM queue q "
                        "WHERE q.generation_id = ? AND NOT EXISTS (SELECT 1 FROM touched_items t "
                        "WHERE t.dataset = ? AND t.item_id = q.item_id) AND NOT EXISTS "
                        "(SELECT 1 FROM leases l WHERE l.dataset = ? AND l.item_id = q.item_id "
                        "AND l.expires_at > ?) ORDER BY q.rank LIMIT ?",
                        [generation[0], self.dataset, self.dataset, now, need],
                    ).fetchall()
                    chosen += rows
                    need -= len(rows)
                    queue_exhausted = need > 0
                elif generation is None:
                    queue_exhausted = True
                if need > 0:
                    rows = self.con.execute(
                        f"SELECT d.item_id FROM {self.relation} d WHERE NOT EXISTS "
                        "(SELECT 1 FROM touched_items t WHERE t.dataset = ? AND "
                        "t.item_id = d.item_id) AND NOT EXISTS (SELECT 1 FROM leases l WHERE "
                        "l.dataset = ? AND l.item_id = d.item_id AND l.expires_at > ?) "
                        f"ORDER BY d.{self.order_by} LIMIT ?",
                        [self.dataset, self.dataset, now, need],
                    ).fetchall()
                    chosen += [(r[0], None, None, None) for r in rows]
                new = [c for c in chosen if c[0] not in {h[0] for h in held}]
                for item_id, score, generation_id, model_version in new:
                    self.con.execute(
                        "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            self.dataset,
                            item_id,
                            user,
                            generation_id,
                            score,
                            model_version,
                            now,
                            expires,
                        ],
                    )
            items = self._items([c[0] for c in chosen], user, hint=hint, generation=generation)
        return Handout(items, queue_exhausted, done=not items)

    def heartbeat(self, user: str, item_id: str) -> datetime:
        """Extend the user's lease on an item (while it is on screen)."""
        with self.lock:
            now = _now()
            expires = now + self.lease
            with transaction(self.con):
                self._check_not_leased_to_other(item_id, user)
                kept = self.con.execute(
                    "SELECT generation_id, score, model_version, leased_at FROM leases "
                    "WHERE dataset = ? AND item_id = ?",
                    [self.dataset, item_id],
                ).fetchone() or (None, None, None, now)
                self.con.execute(
                    "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [self.dataset, item_id, user, *kept, expires],
                )
            return expires

    # -- writes -----------------------------------------------------------------------------
    def _check_item(self, item_id: str) -> None:
        found = self.con.execute(
            f"SELECT 1 FROM {self.relation} WHERE item_id = ? LIMIT 1", [item_id]
        ).fetchone()
        if not found:
            raise NotFoundError(f"no item {item_id!r} in dataset {self.dataset!r}")

    def _check_not_leased_to_other(self, item_id: str, user: str) -> None:
        self._check_item(item_id)
        other = self.con.execute(
            "SELECT annotator FROM leases WHERE dataset = ? AND item_id = ? AND annotator <> ? "
            "AND expires_at > ?",
            [self.dataset, item_id, user, _now()],
        ).fetchone()
        if other:
            raise ConflictError(f"item {item_id!r} is being labeled by someone else")

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
        if status == "labeled" and label not in self.classes:
            raise InputError(
                f"label {label!r} is not one of the classes ({', '.join(self.classes)})"
            )
        if lead_time_ms is not None and lead_time_ms < 0:
            raise InputError("lead_time_ms must not be negative")
        with self.lock, transaction(self.con):
            self._check_not_leased_to_other(item_id, user)
            shown = self.con.execute(
                "SELECT model_version, score FROM leases WHERE dataset = ? AND item_id = ?",
                [self.dataset, item_id],
            ).fetchone() or (None, None)
            event_id = self.con.execute(
                "INSERT INTO label_events (dataset, item_id, label, status, annotator, session, "
                "comment, lead_time_ms, model_version, queue_score) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
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
            ).fetchone()[0]
            self.con.execute(
                "DELETE FROM leases WHERE dataset = ? AND item_id = ?", [self.dataset, item_id]
            )
        return event_id

    def undo(self, user: str, session: str | None = None) -> tuple[dict, dict]:
        """Undo the user's latest labeling action: an ``undone`` event; the item comes back."""
        with self.lock, transaction(self.con):
            row = self.con.execute(
                "SELECT e.item_id, e.label, e.status FROM label_events e WHERE e.dataset = ? "
                "AND e.annotator = ? AND e.status IN ('labeled', 'skipped') AND e.event_id = "
                "(SELECT max(event_id) FROM label_events x WHERE x.dataset = e.dataset AND "
                "x.item_id = e.item_id) ORDER BY e.event_id DESC LIMIT 1",
                [self.dataset, user],
            ).fetchone()
            if row is None:
                raise NotFoundError("nothing to undo")
            item_id, label, status = row
            self.con.execute(
                "INSERT INTO label_events (dataset, item_id, status, annotator, session) "
                "VALUES (?, ?, 'undone', ?, ?)",
                [self.dataset, item_id, user, session],
            )
            now = _now()
            self.con.execute(
                "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, NULL, NULL, NULL, ?, ?)",
                [self.dataset, item_id, user, now, now + self.lease],
            )
        return {"item_id": item_id, "label": label, "status": status}, self.item(item_id, user)

    # -- reads ------------------------------------------------------------------------------
    def item(self, item_id: str, user: str, *, hint: bool = True) -> dict:
        with self.lock:
            self._check_item(item_id)
            return self._items([item_id], user, hint=hint)[0]

    def _items(
        self, item_ids: list[str], user: str, *, hint: bool = True, generation=None
    ) -> list[dict]:
        if not item_ids:
            return []
        columns = self.columns()
        frame = self.con.execute(
            f"SELECT * FROM {self.relation} WHERE item_id = ANY(?::VARCHAR[])", [item_ids]
        ).df()
        frame = frame.set_index("item_id").loc[item_ids]
        meta = {
            r[0]: r[1:]
            for r in self.con.execute(
                "SELECT item_id, generation_id, score, model_version, expires_at FROM leases "
                "WHERE dataset = ? AND item_id IN (SELECT unnest(?::VARCHAR[]))",
                [self.dataset, item_ids],
            ).fetchall()
        }
        ranks = dict(
            self.con.execute(
                "SELECT q.item_id, q.rank FROM queue q JOIN leases l ON l.item_id = q.item_id "
                "AND l.generation_id = q.generation_id WHERE l.dataset = ? AND "
                "q.item_id IN (SELECT unnest(?::VARCHAR[]))",
                [self.dataset, item_ids],
            ).fetchall()
        )
        current = dict(
            self.con.execute(
                "SELECT item_id, label FROM current_labels WHERE dataset = ? AND "
                "item_id IN (SELECT unnest(?::VARCHAR[]))",
                [self.dataset, item_ids],
            ).fetchall()
        )
        predictions = self._predictions(frame, generation) if hint else {}
        items = []
        for item_id in item_ids:
            row = frame.loc[item_id]
            generation_id, score, model_version, expires_at = meta.get(item_id, (None,) * 4)
            items.append(
                {
                    "item_id": item_id,
                    "dataset": self.dataset,
                    "columns": columns,
                    "values": {c: _json_value(row[c]) for c in columns if c in row.index},
                    "rank": ranks.get(item_id),
                    "score": _json_value(score),
                    "generation_id": generation_id,
                    "model_version": model_version,
                    "prediction": predictions.get(item_id),
                    "lease_expires_at": expires_at.isoformat() if expires_at else None,
                    "current_label": current.get(item_id),
                    "media": self._media(row),
                }
            )
        return items

    def _media(self, row) -> dict:
        if not self.media_column or self.media_column not in row.index:
            return {}
        value = row[self.media_column]
        if not isinstance(value, str) or not value:
            return {}
        return {self.media_column: f"/media/{value.lstrip('/')}"}

    def _predictions(self, frame: pd.DataFrame, generation=None) -> dict:
        """The latest queue model's predicted class and confidence, as a hint.

        ``generation`` is ``latest_generation()`` when the caller has it already.
        """
        generation = generation or self.latest_generation()
        if generation is None or generation[1] is None or frame.empty:
            return {}
        key = (generation[1], generation[2])
        if key not in self._model_cache:
            from active_labeling.models import load_model

            try:
                self._model_cache = {key: load_model(self.project.models_dir, *key)}
            except ActiveLabelingError:
                self._model_cache = {key: None}
        saved = self._model_cache[key]
        if saved is None:
            return {}
        try:
            proba = saved.pipeline.predict_proba(frame[saved.meta.feature_columns])
        except (KeyError, ValueError):
            return {}
        best = proba.argmax(axis=1)
        classes = saved.meta.classes
        return {
            item_id: {"label": classes[b], "confidence": round(float(proba[i, b]), 4)}
            for i, (item_id, b) in enumerate(zip(frame.index, best, strict=True))
        }

    def history(self, user: str, limit: int = 20) -> list[dict]:
        with self.lock:
            rows = self.con.execute(
                "SELECT item_id, label, status, created_at, comment FROM label_events "
                "WHERE dataset = ? AND annotator = ? ORDER BY event_id DESC LIMIT ?",
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
        with self.lock:
            hour_ago = _now() - timedelta(hours=1)
            mine_session, mine_total, per_hour = self.con.execute(
                # Items, not events: a relabel does not count twice.
                "SELECT count(DISTINCT item_id) FILTER (WHERE session = ? AND status = 'labeled'), "
                "count(DISTINCT item_id) FILTER (WHERE status = 'labeled'), "
                "count(*) FILTER (WHERE status = 'labeled' AND created_at > ?) "
                "FROM label_events WHERE dataset = ? AND annotator = ?",
                [session, hour_ago, self.dataset, user],
            ).fetchone()
            total = self.con.execute(
                "SELECT count(*) FROM current_labels WHERE dataset = ?", [self.dataset]
            ).fetchone()[0]
            generation = self.latest_generation()
            left = 0
            if generation is not None:
                left = self.con.execute(
                    "SELECT count(*) FROM queue q WHERE q.generation_id = ? AND NOT EXISTS "
                    "(SELECT 1 FROM touched_items t WHERE t.dataset = ? AND t.item_id = q.item_id)",
                    [generation[0], self.dataset],
                ).fetchone()[0]
        return {
            "mine_session": mine_session,
            "mine_total": mine_total,
            "total_labeled": total,
            "left_in_queue": left,
            "labels_per_hour": per_hour,
            "queue_exhausted": generation is None or left == 0,
        }

    def stats(self) -> dict:
        with self.lock:
            rows = self.con.execute(
                "SELECT annotator, count(*) FILTER (WHERE status = 'labeled'), "
                "count(*) FILTER (WHERE status = 'skipped'), max(created_at) "
                "FROM label_events WHERE dataset = ? GROUP BY annotator ORDER BY annotator",
                [self.dataset],
            ).fetchall()
            total = self.con.execute(
                "SELECT count(*) FROM current_labels WHERE dataset = ?", [self.dataset]
            ).fetchone()[0]
        return {
            "labelers": [
                {"annotator": r[0], "labeled": r[1], "skipped": r[2], "last_at": r[3].isoformat()}
                for r in rows
            ],
            "total_labeled": total,
        }

    def events(self, limit: int = 100) -> list[dict]:
        with self.lock:
            rows = self.con.execute(
                "SELECT event_id, item_id, label, status, annotator, created_at, comment "
                "FROM label_events WHERE dataset = ? ORDER BY event_id DESC LIMIT ?",
                [self.dataset, max(1, min(int(limit), 1000))],
            ).fetchall()
        keys = ("event_id", "item_id", "label", "status", "annotator", "created_at", "comment")
        return [
            {
                k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in zip(keys, r, strict=True)
            }
            for r in rows
        ]

    def export(self, fmt: str, directory: Path) -> Path:
        from active_labeling.store.labels import export_labels

        if fmt not in ("parquet", "csv"):
            raise InputError(f"format must be parquet or csv, got {fmt!r}")
        stamp = _now().strftime("%Y%m%dT%H%M%S")
        with self.lock:
            return export_labels(self.con, self.dataset, directory / f"labels-{stamp}.{fmt}")

    def count_items(self) -> int:
        with self.lock:
            return self.con.execute(f"SELECT count(*) FROM {table_of(self.dataset)}").fetchone()[0]
