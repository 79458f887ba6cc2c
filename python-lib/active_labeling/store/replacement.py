"""Replacing a dataset: what its labels and queue items find in the new version.

Label events are never deleted and queue generations never rewritten, so when a dataset is
imported again under its name (``--replace``), the items they name by id may be gone from
it, or still there but holding other values (row-position ids of a file whose rows moved).
This module counts both while the old version still exists, so that the user is told. It
must never change a label event, an item's state or a queue row.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from active_labeling.store.connection import quote_identifier

#: The items of the latest generation of each queue over a dataset.
_QUEUED = """
    SELECT DISTINCT q.item_id FROM queue q
    JOIN (SELECT max(generation_id) AS generation_id FROM queue_generations
          WHERE dataset = ? GROUP BY queue) latest USING (generation_id)
"""
_LABELED = "SELECT item_id FROM current_labels WHERE dataset = ?"


@dataclass(frozen=True)
class ItemsAfterReplacement:
    """Items that labels (or queues) point at, and what became of them."""

    total: int
    gone: int  # their id is not in the new version
    changed: int | None  # in both versions with other values; None: no column to compare


@dataclass(frozen=True)
class Replacement:
    """What replacing dataset ``name`` did to the items its labels and queues name."""

    name: str
    previous_rows: int
    labeled: ItemsAfterReplacement
    queued: ItemsAfterReplacement

    def warnings(self, row_position_ids: bool) -> list[str]:
        """One line per kind of item that lost its row, for the command to print."""
        lines = []
        for what, items in (("labeled", self.labeled), ("queued", self.queued)):
            if items.gone:
                lines.append(
                    f"{items.gone} of the {items.total} {what} items of dataset {self.name!r} "
                    "are not in it any more"
                )
            if items.changed:
                lines.append(
                    f"{items.changed} of the {items.total} {what} items of dataset "
                    f"{self.name!r} hold other values than before"
                )
        if lines:
            lines.append("their label events are kept: an item whose id comes back finds them")
            if row_position_ids:
                lines.append(
                    "ids are row positions: give the file an id column (--id-column) so that "
                    "labels follow their rows when rows move"
                )
        return lines


def compare_versions(con: duckdb.DuckDBPyConnection, name: str, old: str, new: str) -> Replacement:
    """Compare relation ``old`` (the dataset now) with ``new`` (what replaces it).

    Both are quoted relation names; call in the transaction that replaces the dataset.
    """
    differs = _differs(con, old, new)
    return Replacement(
        name=name,
        previous_rows=con.execute(f"SELECT count(*) FROM {old}").fetchone()[0],
        labeled=_items_after(con, _LABELED, name, old, new, differs),
        queued=_items_after(con, _QUEUED, name, old, new, differs),
    )


def _differs(con, old: str, new: str) -> str | None:
    """A SQL test that rows ``o`` and ``n`` differ on a column both have; None if none."""
    old_types = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {old}").fetchall()}
    new_types = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {new}").fetchall()}
    tests = []
    for column in old_types:
        if column == "item_id" or column not in new_types:
            continue
        q = quote_identifier(column)
        if old_types[column] == new_types[column]:
            tests.append(f"o.{q} IS DISTINCT FROM n.{q}")
        else:  # a type inferred anew (BIGINT then DOUBLE): compare the text
            tests.append(f"CAST(o.{q} AS VARCHAR) IS DISTINCT FROM CAST(n.{q} AS VARCHAR)")
    return " OR ".join(tests) or None


def _items_after(con, items: str, name: str, old: str, new: str, differs: str | None):
    both = "o.item_id IS NOT NULL AND n.item_id IS NOT NULL"
    changed = f"count(*) FILTER (WHERE {both} AND ({differs}))" if differs else "NULL"
    total, gone, n_changed = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE n.item_id IS NULL), {changed} "
        f"FROM ({items}) i LEFT JOIN {old} o ON o.item_id = i.item_id "
        f"LEFT JOIN {new} n ON n.item_id = i.item_id",
        [name],
    ).fetchone()
    return ItemsAfterReplacement(total, gone, n_changed)
