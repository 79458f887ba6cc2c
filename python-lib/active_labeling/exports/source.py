"""What every export reads: the decided labels joined with their items, in batches, and the
atomic writing of a file or a folder.

The label of an item is the one training reads (``store.consensus``): a reviewer's decision,
else its labelers' consensus, else its one label; an item whose labelers disagree and that no
reviewer decided yet is left out (it is in the review queue). Rows come in labeling order
(the event id of the item's state), as plain dicts, a batch at a time from DuckDB's Arrow
reader: an export of a million labels holds one batch of items in memory, and the
decisions of the items labeled twice or reviewed (one row each).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from active_labeling.errors import InputError
from active_labeling.store.connection import quote_identifier
from active_labeling.store.datasets import arrow_batches, dataset_schema, require_dataset

#: Rows per batch read from the store.
BATCH_ROWS = 20_000
#: A folder an export wrote holds this file: only such a folder is replaced by a new export.
FOLDER_MARK = ".active-labeling-export"


@dataclass
class ExportSource:
    """The labeled items of one dataset, and what the formats need to know of it."""

    con: object
    project: object
    dataset: str
    task: str
    classes: list[str]
    columns: list[str]
    text_column: str | None = None
    media_column: str | None = None
    #: How an item labeled more than once is decided (``store.consensus.ConsensusRule``).
    rule: object = None
    _sizes: dict = field(default_factory=dict)

    @classmethod
    def open(cls, con, project, dataset: str) -> ExportSource:
        from active_labeling.labeling.annotations import default_media_column, resolve_text_column
        from active_labeling.store.consensus import ConsensusRule

        require_dataset(con, dataset)
        columns = [c for c, _ in dataset_schema(con, dataset) if c != "item_id"]
        task = project.task_of(dataset)
        text = resolve_text_column(project.settings, columns, dataset) if task == "spans" else None
        media = default_media_column(project, dataset)
        if task == "boxes" and media not in columns:
            raise InputError(
                f"dataset {dataset!r} has no column of image paths ({media or 'media_column'}):"
                " set media_column in project.toml"
            )
        classes = list(project.settings.classes)
        rule = ConsensusRule.for_dataset(project, dataset)
        return cls(con, project, dataset, task, classes, columns, text, media, rule)

    def rows(self) -> Iterator[dict]:
        """Each item with a decided label: ``item_id``, ``_label`` (as stored),
        ``_annotator`` (a reviewer's decision: the reviewer), ``_labeled_at``, and every
        column of the item.

        Only the items two labelers or more labeled, or a reviewer decided, are decided in
        memory (``store.consensus``); an item of one labeler's has that labeler's current
        label, streamed from the store's ``current_labels`` view as it is."""
        from active_labeling.store.consensus import (
            ConsensusRule,
            decide,
            read_events,
            review_column,
        )

        relation = require_dataset(self.con, self.dataset)
        several = (
            "SELECT item_id FROM label_events WHERE dataset = ? GROUP BY item_id "
            f"HAVING count(DISTINCT annotator) >= 2 OR count({review_column(self.con)}) > 0"
        )
        ids = [r[0] for r in self.con.execute(several, [self.dataset]).fetchall()]
        labels = (
            "SELECT item_id, label, annotator, created_at AS labeled_at, event_id "
            "FROM current_labels WHERE dataset = ?"
        )
        name = f"_export_decided_{uuid.uuid4().hex[:8]}"
        decided = None
        if ids:
            rule = self.rule or ConsensusRule()
            items = decide(read_events(self.con, self.dataset, item_ids=ids), rule).items
            items = items[items["label"].notna()]
            decided = pd.DataFrame(
                {
                    "item_id": items["item_id"].astype(str).to_numpy(),
                    "label": items["label"].astype(str).to_numpy(),
                    "annotator": items["annotator"].astype(str).to_numpy(),
                    "labeled_at": pd.to_datetime(items["labeled_at"], utc=True),
                    "event_id": items["state_event_id"].astype("int64").to_numpy(),
                }
            )
            labels = (
                f"{labels} AND item_id NOT IN ({several}) UNION ALL "
                f"SELECT item_id, label, annotator, labeled_at, event_id FROM {name}"
            )
        selected = ", ".join(f"d.{quote_identifier(c)}" for c in self.columns)
        query = (
            "SELECT c.item_id, c.label AS _label, c.annotator AS _annotator, "
            f"c.labeled_at AS _labeled_at, {selected} FROM ({labels}) c "
            f"JOIN {relation} d ON d.item_id = c.item_id ORDER BY c.event_id"
        )
        args = [self.dataset, self.dataset] if ids else [self.dataset]
        # On a cursor of its own: the reader streams while other queries may run on ``con``.
        cursor = self.con.cursor()
        if decided is not None:
            cursor.register(name, decided)
        try:
            for batch in arrow_batches(cursor, query, BATCH_ROWS, args):
                yield from batch.to_pylist()
        finally:
            if decided is not None:
                cursor.unregister(name)
            cursor.close()

    def annotations(self, row: dict, what: str) -> list[dict]:
        """The spans or boxes of a row; a label that is not such a list (imported before the
        project's task changed) is an error naming the item."""
        try:
            value = json.loads(row["_label"])
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, list):
            raise InputError(
                f"item {row['item_id']!r}: its label {row['_label']!r} is not a list of {what}"
            )
        return value

    def image_size(self, row: dict) -> tuple[int, int]:
        """An image's (width, height): its row's columns (folder datasets), else its file."""
        from active_labeling.labeling.annotations import image_size

        try:
            return image_size(self.project.root, row.get(self.media_column), row, self._sizes)
        except InputError as exc:
            raise InputError(f"item {row['item_id']!r}: {exc}") from None

    def image_name(self, row: dict) -> str:
        """The image's path under ``media/``: what COCO's file_name and the YOLO and VOC
        file names follow."""
        return str(row.get(self.media_column) or row["item_id"]).lstrip("/")


@contextmanager
def atomic_file(path: Path) -> Iterator[object]:
    """A text file written beside ``path`` and renamed over it once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """A folder built beside ``path`` and swapped in once complete.

    An existing ``path`` is replaced only when an export made it (it holds
    ``FOLDER_MARK``) or it is empty: a folder of the user's own is never deleted.
    """
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{path} is a file: a folder export needs a folder's path")
        if any(path.iterdir()) and not (path / FOLDER_MARK).exists():
            raise InputError(
                f"{path} is a folder that an export did not write: choose an empty or new one"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    try:
        yield building
        (building / FOLDER_MARK).write_text("written by active-labeling labels export\n")
        if path.exists():
            os.replace(path, old)
        os.replace(building, path)
    finally:
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


class PerItemFiles:
    """The files of a folder export, one per item, named after its image's path with another
    suffix; never outside the folder (a ``..`` in a path stays inside). Folders are made
    once each: 100,000 files in one folder cost 100,000 opens, not 200,000 system calls."""

    def __init__(self, root: Path, suffix: str):
        self.root = str(root)
        self.suffix = suffix
        self._made: set[str] = set()

    def write(self, name: str, text: str) -> None:
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
        stem = os.path.splitext(parts.pop())[0] if parts else "item"
        folder = os.path.join(self.root, *parts)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        with open(os.path.join(folder, stem + self.suffix), "w", encoding="utf-8") as handle:
            handle.write(text)
