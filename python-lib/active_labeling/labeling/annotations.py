"""What a labeler writes for each task type, checked before it is stored, and what the
labeling page needs to show an item of that type.

- ``classification``: a class; multi-label projects a JSON list of classes
  (``service.encode_labels``).
- ``audio``: a class, as classification; the item card carries the sound's URL.
- ``spans``: a JSON list of ``{"start", "end", "label"}``, offsets in characters (Unicode
  code points, as Python and spaCy count them) of the item's text, each on token bounds
  (``tokenize``), none overlapping another, stored in text order.
- ``boxes``: a JSON list of ``{"x", "y", "w", "h", "label"}`` in pixels of the image (origin
  top left), each inside the image and of positive area.

Every annotation is one label event, as a class is (``store.labels``): undo, back, skip,
comments, leases and overlap are the same for every type. A refusal is an ``InputError``
naming the field (``spans[2].end``), answered 422 by the app. This module returns data the
page sets as text: it never renders anything.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from active_labeling.errors import ActiveLabelingError, InputError
from active_labeling.store.connection import quote_identifier

if TYPE_CHECKING:  # pragma: no cover
    from active_labeling.labeling.service import LabelingService

#: Longest phrase (in tokens) the dictionary of earlier spans proposes again.
DICTIONARY_MAX_TOKENS = 8
#: Seconds between two looks for a newer spans model.
MODEL_TTL = 5.0
_TOKEN = re.compile(r"\w+|\S")
#: Characters of the scripts written right to left (Hebrew, Arabic, Syriac, Thaana, NKo...).
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
_LTR = re.compile(r"[A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff\u0900-\u0dff\u3040-\u9fff]")


class Span(BaseModel):
    """A marked stretch of the text: characters ``start`` (included) to ``end`` (excluded)."""

    model_config = ConfigDict(extra="forbid")

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    label: str = Field(min_length=1, max_length=200)


class Box(BaseModel):
    """A rectangle on the image, in its pixels: top-left corner, width and height."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)
    w: float = Field(allow_inf_nan=False)
    h: float = Field(allow_inf_nan=False)
    label: str = Field(min_length=1, max_length=200)


# --- text ------------------------------------------------------------------------------------


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M")


#: The tokens kept for the latest texts, up to this many characters of text in all: a
#: spans item is tokenized when handed out, again when its label is checked (under the
#: service's lock) and for its dictionary prelabels. A text's tokens take about 12 bytes a
#: character (a 5,000-token text of 50,000 characters: 0.6 MB), so 2,000,000 characters hold
#: 40 such texts, 20 labelers' items in flight, in about 25 MB.
TOKEN_CACHE_CHARS = 2_000_000


class _TokenCache:
    """The latest texts' tokens, least recently used out first, bounded by the characters
    of text held (a count of texts would hold 64 texts of a megabyte as readily as 64
    sentences). Thread-safe: the app's threads tokenize at once."""

    def __init__(self, budget: int):
        from collections import OrderedDict

        self.budget = budget
        self.held = 0
        self.entries: OrderedDict[str, tuple[tuple[int, int], ...]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, text: str, compute) -> tuple[tuple[int, int], ...]:
        with self.lock:
            found = self.entries.get(text)
            if found is not None:
                self.entries.move_to_end(text)
                return found
        tokens = compute(text)
        if len(text) <= self.budget:
            with self.lock:
                if text not in self.entries:
                    self.entries[text] = tokens
                    self.held += len(text)
                    while self.held > self.budget:
                        old, _ = self.entries.popitem(last=False)
                        self.held -= len(old)
        return tokens


_TOKEN_CACHE = _TokenCache(TOKEN_CACHE_CHARS)


def tokenize(text: str) -> list[tuple[int, int]]:
    """The tokens of a text as (start, end) character offsets (a new list each call; the
    offsets of the latest texts are cached, :data:`TOKEN_CACHE_CHARS`).

    A token is a run of word characters (letters, digits, ``_``, with their combining
    marks: a Devanagari vowel sign or an Arabic vowel mark stays in its word), or any other
    single non-space character (punctuation). Spans start and end on these bounds.

    >>> text = "Ada Lovelace, 1815."
    >>> [text[s:e] for s, e in tokenize(text)]
    ['Ada', 'Lovelace', ',', '1815', '.']
    >>> hindi = "नमस्ते दुनिया"
    >>> [hindi[s:e] for s, e in tokenize(hindi)]
    ['नमस्ते', 'दुनिया']
    """
    return list(_TOKEN_CACHE.get(text, _tokens))


def _tokens(text: str) -> tuple[tuple[int, int], ...]:
    tokens: list[tuple[int, int]] = []
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        if tokens and tokens[-1][1] == start:
            previous = text[start - 1]
            if _is_mark(text[start]) or (_is_mark(previous) and text[start].isalnum()):
                tokens[-1] = (tokens[-1][0], end)
                continue
        tokens.append((start, end))
    return tuple(tokens)


def text_direction(text: str) -> str:
    """``rtl`` when the text's first strong letter is of a right-to-left script, else
    ``ltr`` (the rule of the Unicode bidirectional algorithm's first paragraph).

    >>> text_direction("שלום world"), text_direction("hello שלום")
    ('rtl', 'ltr')
    """
    rtl, ltr = _RTL.search(text), _LTR.search(text)
    if rtl and (ltr is None or rtl.start() < ltr.start()):
        return "rtl"
    return "ltr"


def check_spans(spans: list[dict], text: str, classes: list[str]) -> list[dict]:
    """The spans in text order, once each is known to fit the text; InputError naming the
    first span at fault (by its place in the list sent) otherwise."""
    tokens = tokenize(text)
    starts = {s for s, _ in tokens}
    ends = {e for _, e in tokens}
    checked = []
    for i, raw in enumerate(spans):
        where = f"spans[{i}]"
        span = _parse(Span, raw, where)
        if span.label not in classes:
            raise InputError(
                f"{where}.label: {span.label!r} is not one of the classes ({', '.join(classes)})"
            )
        if span.end <= span.start:
            raise InputError(f"{where}: end ({span.end}) must be after start ({span.start})")
        if span.end > len(text):
            raise InputError(f"{where}.end: {span.end} is beyond the text ({len(text)} characters)")
        if span.start not in starts:
            raise InputError(
                f"{where}.start: {span.start} is not where a token starts "
                f"({_nearest(sorted(starts), span.start)})"
            )
        if span.end not in ends:
            raise InputError(
                f"{where}.end: {span.end} is not where a token ends "
                f"({_nearest(sorted(ends), span.end)})"
            )
        checked.append((span.start, span.end, span.label, i))
    checked.sort()
    for (s1, e1, _, i1), (s2, e2, _, i2) in itertools.pairwise(checked):
        if s2 < e1:
            raise InputError(
                f"spans[{i2}] ({s2}-{e2}) overlaps spans[{i1}] ({s1}-{e1}): spans must not overlap"
            )
    return [{"start": s, "end": e, "label": label} for s, e, label, _ in checked]


def _nearest(bounds: list[int], value: int) -> str:
    import bisect

    at = bisect.bisect_left(bounds, value)
    near = bounds[max(0, at - 1) : at + 1]
    return "the nearest are " + " and ".join(str(b) for b in near) if near else "no token"


def check_boxes(boxes: list[dict], width: int, height: int, classes: list[str]) -> list[dict]:
    """The boxes as sent, once each is known to lie inside a ``width`` x ``height`` image
    with a positive area and a class; InputError naming the first box at fault otherwise."""
    checked = []
    for i, raw in enumerate(boxes):
        where = f"boxes[{i}]"
        box = _parse(Box, raw, where)
        if box.label not in classes:
            raise InputError(
                f"{where}.label: {box.label!r} is not one of the classes ({', '.join(classes)})"
            )
        if box.w <= 0 or box.h <= 0:
            raise InputError(f"{where}: zero area (w = {box.w:g}, h = {box.h:g})")
        for name, low, high, limit, side in (
            ("x", box.x, box.x + box.w, width, "width"),
            ("y", box.y, box.y + box.h, height, "height"),
        ):
            if low < 0:
                raise InputError(f"{where}.{name}: {low:g} is outside the image (below 0)")
            if high > limit:
                size = "w" if name == "x" else "h"
                raise InputError(
                    f"{where}: {name} + {size} = {high:g} is outside the image ({side} {limit})"
                )
        checked.append(box.model_dump())
    return checked


def _parse(model: type[BaseModel], raw, where: str):
    if isinstance(raw, model):
        return raw
    try:
        return model.model_validate(raw)
    except ValueError as exc:  # pydantic's ValidationError: name the first field at fault
        errors = getattr(exc, "errors", lambda: [])()
        if errors:
            first = errors[0]
            place = ".".join(str(p) for p in first["loc"])
            raise InputError(f"{where}.{place}: {first['msg']}") from None
        raise InputError(f"{where}: {exc}") from None


def decode_list(value: str | None, what: str) -> list:
    """A stored span or box list; InputError when the value is not a JSON list."""
    try:
        decoded = json.loads(value) if value is not None else None
    except ValueError:
        decoded = None
    if not isinstance(decoded, list):
        raise InputError(f"{value!r} is not a JSON list of {what}")
    return decoded


# --- the task types --------------------------------------------------------------------------


class ClassificationTask:
    """One class per item (or a list of classes, multi-label): what the app did before."""

    kind = "classification"
    #: Whether the label is a structured list this module checks (spans, boxes).
    structured = False

    def __init__(self, service: LabelingService):
        self.service = service

    def label_value(self, body) -> str | None:
        if getattr(body, "spans", None) is not None or getattr(body, "boxes", None) is not None:
            raise InputError(f"this project's task is {self.kind}: send 'label' (or 'labels')")
        return self.service.label_value(body.label, body.labels)

    def check(self, item_id: str, value: str) -> str:
        return value

    def decorate(self, items: list[dict], records: dict) -> list[dict]:
        return items

    def session_info(self) -> dict:
        return {"task": self.kind}


class AudioTask(ClassificationTask):
    """Listen, then pick a class: the card carries the sound's URL instead of an image."""

    kind = "audio"

    def decorate(self, items: list[dict], records: dict) -> list[dict]:
        column = self.service.media_column
        for item in items:
            row = records.get(item["item_id"], {})
            item["audio"] = _media_url(row.get(column)) if column else None
            item["duration_s"] = row.get("duration_s")
            item["media"] = {}  # not an image
        return items


class _StructuredTask(ClassificationTask):
    structured = True
    field = ""  # the body's field: spans or boxes

    def label_value(self, body) -> str:
        value = getattr(body, self.field, None)
        if value is None or body.label is not None or body.labels is not None:
            raise InputError(
                f"this project's task is {self.kind}: send '{self.field}', a list (empty when "
                "there is nothing to mark)"
            )
        return json.dumps([v.model_dump() if isinstance(v, BaseModel) else v for v in value])

    def _row(self, item_id: str, columns: list[str]) -> tuple:
        """The item's values of ``columns`` (call under the service's lock)."""
        selected = ", ".join(quote_identifier(c) for c in columns)
        row = self.service.con.execute(
            f"SELECT {selected} FROM {self.service.relation} WHERE item_id = ?", [item_id]
        ).fetchone()
        if row is None:
            raise InputError(f"no item {item_id!r}")
        return row


class SpansTask(_StructuredTask):
    """Mark stretches of a text with classes (named entities)."""

    kind = "spans"
    field = "spans"

    def __init__(self, service: LabelingService):
        super().__init__(service)
        self.text_column = text_column(service)
        self.dictionary = SpanDictionary(service, self.text_column)
        self.model = SpansPrelabeler(service)

    def check(self, item_id: str, value: str) -> str:
        (text,) = self._row(item_id, [self.text_column])
        spans = decode_list(value, "spans")
        return json.dumps(check_spans(spans, text if isinstance(text, str) else "", self._classes))

    @property
    def _classes(self) -> list[str]:
        return self.service.classes

    def decorate(self, items: list[dict], records: dict) -> list[dict]:
        phrases = self.dictionary.phrases()
        model = self.model.current()
        for item in items:
            row = records.get(item["item_id"], {})
            text = row.get(self.text_column)
            text = text if isinstance(text, str) else ""
            tokens = tokenize(text)
            item["text"] = text
            item["tokens"] = tokens
            item["direction"] = text_direction(text)
            item["values"].pop(self.text_column, None)
            item["columns"] = [c for c in item["columns"] if c != self.text_column]
            current = item.get("current_label")
            item["spans"] = decoded_or_none(current, "spans")
            item["prelabels"] = {
                "dictionary": dictionary_spans(phrases, text, tokens),
                "model": model.predict_spans(text, tokens) if model is not None else [],
                "model_version": model.version if model is not None else None,
            }
        return items

    def session_info(self) -> dict:
        return {"task": self.kind, "text_column": self.text_column}


class BoxesTask(_StructuredTask):
    """Draw rectangles on an image, each with a class."""

    kind = "boxes"
    field = "boxes"

    def __init__(self, service: LabelingService):
        super().__init__(service)
        self.column = service.media_column
        if not self.column:
            raise InputError(
                "a boxes project needs a column of image paths under media/: import a folder "
                "(`dataset import-folder`), or set media_column in project.toml (or serve "
                "--media-column)"
            )
        self._sizes: dict[str, tuple[int, int]] = {}

    def image_size(self, path: str | None, row: dict | None = None) -> tuple[int, int]:
        """The image's (width, height): its dataset's columns, else read from the file."""
        return image_size(self.service.project.root, path, row, self._sizes)

    def check(self, item_id: str, value: str) -> str:
        boxes = decode_list(value, "boxes")
        columns = [self.column, *(c for c in ("width", "height") if c in self._columns())]
        row = dict(zip(columns, self._row(item_id, columns), strict=True))
        width, height = self.image_size(row[self.column], row)
        return json.dumps(check_boxes(boxes, width, height, self.service.classes))

    def _columns(self) -> set[str]:
        if not hasattr(self, "_known_columns"):
            described = self.service.con.execute(
                f"DESCRIBE SELECT * FROM {self.service.relation}"
            ).fetchall()
            self._known_columns = {row[0] for row in described}
        return self._known_columns

    def decorate(self, items: list[dict], records: dict) -> list[dict]:
        for item in items:
            row = records.get(item["item_id"], {})
            path = row.get(self.column)
            try:
                width, height = self.image_size(path, row)
            except InputError:
                width = height = None
            item["image"] = {"url": _media_url(path), "width": width, "height": height}
            item["media"] = {}
            item["boxes"] = decoded_or_none(item.get("current_label"), "boxes")
        return items


TASKS = {
    "classification": ClassificationTask,
    "audio": AudioTask,
    "spans": SpansTask,
    "boxes": BoxesTask,
}


def task_for(service: LabelingService) -> ClassificationTask:
    """The task of the service's dataset (``Project.task_of``)."""
    return TASKS[service.project.task_of(service.dataset)](service)


def default_media_column(project, dataset: str | None) -> str | None:
    """The media column when none is given: the project's, else a folder dataset's ``path``."""
    if project.settings.media_column:
        return project.settings.media_column
    entry = project.config.datasets.get(dataset) if dataset else None
    if entry is not None and entry.kind == "folder":
        return "path"
    return None


def text_column(service: LabelingService) -> str:
    """The column a spans project labels (``resolve_text_column``)."""
    described = service.con.execute(f"DESCRIBE SELECT * FROM {service.relation}").fetchall()
    return resolve_text_column(service.project.settings, [r[0] for r in described], service.dataset)


def resolve_text_column(settings, available: list[str], dataset: str) -> str:
    """``text_column``, else the first text column, else a column named ``text``;
    InputError when the dataset has none of them."""
    wanted = settings.text_column or (settings.text_columns or ["text"])[0]
    if wanted not in available:
        raise InputError(
            f"dataset {dataset!r} has no column {wanted!r} to label spans in (its "
            f"columns are {', '.join(available)}): set text_column in project.toml (or init "
            "--text-column)"
        )
    return wanted


def image_size(
    project_root: Path, path: str | None, row: dict | None, sizes: dict
) -> tuple[int, int]:
    """An image's (width, height): its row's ``width`` and ``height`` (a folder dataset's),
    else read from its file under ``media/`` (and kept in ``sizes``); InputError when the
    item has no image there."""
    if row is not None and row.get("width") and row.get("height"):
        return int(row["width"]), int(row["height"])
    if not isinstance(path, str) or not path:
        raise InputError("the item has no image")
    if path not in sizes:
        file = media_file(project_root, path)
        if file is None:
            raise InputError(f"the item's image {path!r} is not in the project's media/")
        from active_labeling.store.media import probe_image

        sizes[path] = probe_image(file)[1:]
    return sizes[path]


def import_check(con, project, dataset: str):
    """For a spans or boxes dataset, the check ``store.labels.import_labels`` runs on the
    labels of a file (``labels import``): each a JSON list of spans or boxes, checked
    against its item as the labeling app checks a labeler's (on token bounds, not
    overlapping, inside the image, a class of the project's) and returned as the app stores
    it; InputError naming the file's row and the field otherwise. None for other tasks."""
    from active_labeling.store.datasets import dataset_schema, require_dataset

    task = project.task_of(dataset)
    if task not in ("spans", "boxes"):
        return None
    classes = list(project.settings.classes)
    relation = require_dataset(con, dataset)
    columns = [c for c, _ in dataset_schema(con, dataset)]
    if task == "spans":
        wanted = [resolve_text_column(project.settings, columns, dataset)]
    else:
        media = default_media_column(project, dataset)
        if media not in columns:
            raise InputError(
                f"dataset {dataset!r} has no column of image paths ({media or 'media_column'}):"
                " set media_column in project.toml"
            )
        wanted = [media, *(c for c in ("width", "height") if c in columns)]
    sizes: dict = {}

    def check(rows: list[tuple[str, str, str]]) -> list[str]:
        selected = ", ".join(quote_identifier(c) for c in wanted)
        found = {
            r[0]: dict(zip(wanted, r[1:], strict=True))
            for r in con.execute(
                f"SELECT item_id, {selected} FROM {relation} "
                "WHERE item_id IN (SELECT unnest(?::VARCHAR[]))",
                [[item for _, item, _ in rows]],
            ).fetchall()
        }
        stored = []
        for where, item, value in rows:
            row = found[item]
            try:
                listed = decode_list(value, task)
                if task == "spans":
                    text = row[wanted[0]] if isinstance(row[wanted[0]], str) else ""
                    checked = check_spans(listed, text, classes)
                else:
                    width, height = image_size(project.root, row[wanted[0]], row, sizes)
                    checked = check_boxes(listed, width, height, classes)
            except InputError as exc:
                raise InputError(f"{where} (item {item!r}): {exc}") from None
            stored.append(json.dumps(checked))
        return stored

    return check


def media_file(project_root: Path, path: str) -> Path | None:
    """The file under the project's ``media/`` that a media column names, or None when it
    would be outside that folder, or is missing."""
    root = (Path(project_root) / "media").resolve()
    try:
        target = (root / path.lstrip("/")).resolve()
        found = target.is_relative_to(root) and target.is_file()
    except (OSError, ValueError):
        found = False
    return target if found else None


def _media_url(path) -> str | None:
    if not isinstance(path, str) or not path:
        return None
    from urllib.parse import quote

    return "/media/" + quote(path.lstrip("/"))


def decoded_or_none(value, what: str):
    """A stored spans or boxes list, decoded; None when there is none, or the value is not
    such a list (e.g. a class imported before the project's task changed)."""
    if not isinstance(value, str):
        return None
    try:
        return decode_list(value, what)
    except InputError:  # e.g. a class label imported before the project became spans
        return None


# --- prelabels -------------------------------------------------------------------------------


class SpanDictionary:
    """The phrases labeled before (lower-cased token sequences) and their latest class.

    Read from the label events incrementally: each call looks only at events newer than
    the last it saw, on the calling thread's own cursor (never under the service's lock).
    """

    def __init__(self, service: LabelingService, column: str):
        self.service = service
        self.column = column
        self._lock = threading.Lock()
        self._seen = 0
        self._phrases: dict[tuple[str, ...], str] = {}

    def phrases(self) -> dict[tuple[str, ...], str]:
        with self._lock:
            rows = (
                self.service.cursor()
                .execute(
                    f"SELECT e.event_id, e.label, d.{quote_identifier(self.column)} "
                    f"FROM label_events e JOIN {self.service.relation} d USING (item_id) "
                    "WHERE e.dataset = ? AND e.status = 'labeled' AND e.event_id > ? "
                    "ORDER BY e.event_id",
                    [self.service.dataset, self._seen],
                )
                .fetchall()
            )
            for event_id, value, text in rows:
                self._seen = max(self._seen, event_id)
                spans = decoded_or_none(value, "spans") or []
                if not isinstance(text, str):
                    continue
                for span in spans:
                    if not isinstance(span, dict):
                        continue
                    words = tuple(w.lower() for w in _words(text[span["start"] : span["end"]]))
                    if 0 < len(words) <= DICTIONARY_MAX_TOKENS:
                        self._phrases[words] = span["label"]
            return self._phrases


def _words(text: str) -> list[str]:
    return [text[s:e] for s, e in tokenize(text)]


def dictionary_spans(
    phrases: dict[tuple[str, ...], str], text: str, tokens: list[tuple[int, int]]
) -> list[dict]:
    """The longest known phrases found in the text, left to right, never overlapping."""
    if not phrases:
        return []
    longest = max(len(p) for p in phrases)
    words = [text[s:e].lower() for s, e in tokens]
    found = []
    i = 0
    while i < len(words):
        for length in range(min(longest, len(words) - i), 0, -1):
            label = phrases.get(tuple(words[i : i + length]))
            if label is not None:
                found.append(
                    {"start": tokens[i][0], "end": tokens[i + length - 1][1], "label": label}
                )
                i += length
                break
        else:
            i += 1
    return found


class SpansPrelabeler:
    """The newest spans model of the project (``models.spans``), reloaded when a newer
    version is saved (looked for at most every ``MODEL_TTL`` seconds)."""

    def __init__(self, service: LabelingService):
        self.models_dir = service.project.models_dir
        self._lock = threading.Lock()
        self._checked = -float("inf")
        self._model = None

    def current(self):
        with self._lock:
            now = time.monotonic()
            if now - self._checked < MODEL_TTL:
                return self._model
            self._checked = now
            from active_labeling.models.spans import load_spans_model, newest_spans_version

            try:
                newest = newest_spans_version(self.models_dir)
                if newest is None:
                    self._model = None
                elif self._model is None or newest != (self._model.name, self._model.version):
                    self._model = load_spans_model(self.models_dir, *newest)
            except ActiveLabelingError:
                self._model = None
            return self._model
