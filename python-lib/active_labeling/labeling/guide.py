"""The labeling guide: what the task is, and what each class means, as the admin wrote it.

An admin sets it (``active-labeling guide set``, or the admin page); the labeling page
shows it above the item and on each class button, always as text, never as HTML. It lives
in the store (``store_meta``, one JSON value), so the server reads it fresh on each page
load, and a change made through the server needs no restart. It must never hold anything
but plain text of bounded length.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from active_labeling.errors import InputError
from active_labeling.store.connection import transaction

#: The key of the guide in ``store_meta``.
GUIDE_KEY = "labeling_guide"
MAX_TASK_CHARS = 4000
MAX_CLASS_CHARS = 1000


@dataclass(frozen=True)
class Guide:
    """The task's description and each class's guidance (classes without any are left
    out); who set it last, and when (ISO 8601, UTC)."""

    task: str = ""
    classes: dict[str, str] = field(default_factory=dict)
    updated_by: str | None = None
    updated_at: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def read_guide(con) -> Guide:
    """The stored guide; an empty one when none was set."""
    row = con.execute("SELECT value FROM store_meta WHERE key = ?", [GUIDE_KEY]).fetchone()
    if row is None:
        return Guide()
    data = json.loads(row[0])
    return Guide(
        task=str(data.get("task", "")),
        classes={str(k): str(v) for k, v in (data.get("classes") or {}).items()},
        updated_by=data.get("updated_by"),
        updated_at=data.get("updated_at"),
    )


def checked_guide(task: str, guidance: dict[str, str], classes: list[str]) -> tuple[str, dict]:
    """The task and the guidance, trimmed, once checked: known classes only, bounded
    lengths, no control characters but line breaks and tabs. InputError names the field."""
    task = _plain(task, "task", MAX_TASK_CHARS)
    kept = {}
    for label, text in guidance.items():
        if label not in classes:
            raise InputError(
                f"guidance for {label!r}: not one of the project's classes ({', '.join(classes)})"
            )
        text = _plain(text, f"guidance for {label!r}", MAX_CLASS_CHARS)
        if text:
            kept[label] = text
    return task, {label: kept[label] for label in classes if label in kept}


def _plain(text, what: str, limit: int) -> str:
    if not isinstance(text, str):
        raise InputError(f"{what} must be text, got {type(text).__name__}")
    text = text.replace("\r\n", "\n").strip()
    if len(text) > limit:
        raise InputError(f"{what} is {len(text)} characters long; at most {limit}")
    bad = next((c for c in text if ord(c) < 32 and c not in "\n\t"), None)
    if bad is not None:
        raise InputError(f"{what} holds the control character {bad!r}")
    return text


def write_guide(con, task: str, guidance: dict[str, str], *, classes: list[str], author: str):
    """Replace the guide (one transaction); returns it as stored."""
    task, kept = checked_guide(task, guidance, classes)
    guide = Guide(
        task=task,
        classes=kept,
        updated_by=author,
        updated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    with transaction(con):
        con.execute(
            "INSERT OR REPLACE INTO store_meta VALUES (?, ?)",
            [GUIDE_KEY, json.dumps(guide.as_dict())],
        )
    return guide
