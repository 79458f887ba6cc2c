"""A project on disk: ``project.toml`` (the flow's declarations) beside ``store.duckdb``.

``project.toml`` is the one place datasets, recipes and scenarios are declared. It is always
rewritten whole through a temporary file and a rename, so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from active_labeling.errors import InputError
from active_labeling.flow.config_errors import config_error
from active_labeling.flow.scenario_config import ScenarioEntry, default_scenarios
from active_labeling.store import connect

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROJECT_FILE = "project.toml"
STORE_FILE = "store.duckdb"

#: (store path, cursor factory) while the labeling server runs a command on its own store.
_SHARED_STORE: ContextVar[tuple[Path, Callable] | None] = ContextVar("shared_store", default=None)


@contextmanager
def shared_store(store_path: Path, cursor: Callable) -> Iterator[None]:
    """Within this block (this thread), ``Project.connect`` of the store at ``store_path``
    returns ``cursor()``: a new cursor on a connection that is already open, instead of a
    second connection the store's lock would refuse. The labeling server runs forwarded
    commands this way."""
    token = _SHARED_STORE.set((Path(store_path).resolve(), cursor))
    try:
        yield
    finally:
        _SHARED_STORE.reset(token)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: What a labeler does with an item (``labeling.annotations`` checks what each one writes).
TASK_TYPES = ("classification", "spans", "boxes", "audio")
TaskType = Literal["classification", "spans", "boxes", "audio"]


class ProjectSettings(_Strict):
    """What the project labels and from which columns."""

    name: str
    label_column: str = "label"
    classes: list[str] = Field(default_factory=list)
    id_column: str | None = None
    feature_columns: list[str] = Field(default_factory=list)
    text_columns: list[str] = Field(default_factory=list)
    #: Several classes per item: a label event holds a JSON list of classes.
    multi_label: bool = False
    #: Multi-label projects: whether an empty label set (no class applies) is an answer.
    #: When false, imports, the app and training refuse an empty set, naming the item.
    allow_empty: bool = True
    #: Share of items handed to a second labeler, to measure agreement between labelers.
    overlap: float = Field(default=0.0, ge=0.0, lt=1.0)
    #: What a labeler does with an item (``labeling.annotations``): pick a class
    #: (``classification``, several with ``multi_label``), mark text ``spans``, draw
    #: ``boxes`` on an image, or listen to ``audio`` and pick a class. A dataset may say
    #: otherwise (``[datasets.NAME] task``).
    task: TaskType = "classification"
    #: Spans projects: the column holding the text labeled (default: the first of
    #: ``text_columns``, else a column named ``text``).
    text_column: str | None = None
    #: Boxes and audio projects: the column of file paths under the project's ``media/``
    #: (default: ``path``, the column a folder dataset has).
    media_column: str | None = None
    #: How the labels of an item labeled twice or more become one (``store.consensus``):
    #: the majority, or Dawid-Skene (labelers weighed by their estimated accuracy).
    consensus: Literal["majority", "dawid_skene"] = "majority"
    #: A tie gives no label until a reviewer decides, or the tied class first in `classes`.
    consensus_tie: Literal["review", "first"] = "review"
    #: A consensus less confident than this gives no label until a reviewer decides.
    consensus_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Boxes: two labelers' boxes of one class are the same object from this IoU (their lists
    #: agree when every box pairs up so); PASCAL VOC's criterion by default.
    consensus_iou: float = Field(default=0.5, gt=0.0, le=1.0)
    #: Share of the items labeled once that the review queue also shows, to spot-check them.
    review_sample: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("classes")
    @classmethod
    def _distinct_classes(cls, classes: list[str]) -> list[str]:
        if len(set(classes)) != len(classes):
            raise ValueError("classes must be distinct")
        return classes

    @model_validator(mode="after")
    def _label_sets_need_classes(self) -> ProjectSettings:
        if self.multi_label and not self.classes:
            raise ValueError(
                "multi_label = true needs the classes (--classes a,b,c): a label set is "
                "a list of them"
            )
        return self

    @model_validator(mode="after")
    def _consensus_fits_the_labels(self) -> ProjectSettings:
        if self.multi_label and self.consensus == "dawid_skene":
            raise ValueError(
                "consensus = 'dawid_skene' is single-label: a multi-label project takes the "
                "majority per class (consensus = 'majority')"
            )
        return self


class DatasetEntry(_Strict):
    """A dataset of the store: copied in (``table``), Parquet read in place, or the files of
    a folder (``folder``: one row per image or sound, the files under ``media/NAME``)."""

    kind: Literal["table", "parquet", "folder"]
    source: str
    id_column: str | None = None
    rows: int
    columns: list[str]
    imported_at: datetime
    #: The task for this dataset when it is not the project's (``ProjectSettings.task``).
    task: TaskType | None = None


class RecipeEntry(_Strict):
    """A recipe of the flow: its type, what it reads and writes, its parameters."""

    type: str
    inputs: dict[str, list[str]] = Field(default_factory=dict)
    outputs: dict[str, list[str]] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)


class ProjectConfig(_Strict):
    project: ProjectSettings
    datasets: dict[str, DatasetEntry] = Field(default_factory=dict)
    recipes: dict[str, RecipeEntry] = Field(default_factory=dict)
    scenarios: dict[str, ScenarioEntry] = Field(default_factory=dict)


class Project:
    """A project directory. Open one with :meth:`open`, make one with :meth:`init`."""

    def __init__(self, root: Path, config: ProjectConfig):
        self.root = Path(root)
        self.config = config

    # -- paths ------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / PROJECT_FILE

    @property
    def store_path(self) -> Path:
        return self.root / STORE_FILE

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def settings(self) -> ProjectSettings:
        return self.config.project

    # -- life cycle -------------------------------------------------------------------------
    @classmethod
    def init(cls, root: Path | str, **settings) -> Project:
        """Create ``project.toml`` and ``store.duckdb`` in ``root`` (made if missing)."""
        root = Path(root)
        if (root / PROJECT_FILE).exists():
            raise InputError(f"{root / PROJECT_FILE} already exists: this is a project already")
        settings.setdefault("name", root.resolve().name)
        try:
            # Every new project gets the default scenario (flow.scenario_config); its recipes
            # are declared once a dataset is there (`active-labeling scenario setup`).
            config = ProjectConfig(
                project=ProjectSettings(**settings), scenarios=default_scenarios()
            )
        except ValidationError as exc:
            raise config_error("project settings", exc) from None
        root.mkdir(parents=True, exist_ok=True)
        for folder in ("models", "exports"):
            (root / folder).mkdir(exist_ok=True)
        project = cls(root, config)
        connect(project.store_path).close()
        project.save()
        return project

    @classmethod
    def open(cls, root: Path | str) -> Project:
        root = Path(root)
        path = root / PROJECT_FILE
        if not path.is_file():
            raise InputError(
                f"{root} is not a project (no {PROJECT_FILE}); create one with "
                f"`active-labeling init {root}`"
            )
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not valid TOML: {exc}") from None
        try:
            return cls(root, ProjectConfig.model_validate(data))
        except ValidationError as exc:
            raise config_error(str(path), exc) from None

    def save(self) -> None:
        """Write ``project.toml`` atomically."""
        text = tomli_w.dumps(self.config.model_dump(mode="json", exclude_none=True))
        temporary = self.config_path.with_name(f".{PROJECT_FILE}.tmp-{os.getpid()}")
        try:
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, self.config_path)
        finally:
            temporary.unlink(missing_ok=True)

    def connect(self, *, read_only: bool = False):
        """A connection to the project store (one writing process at a time)."""
        shared = _SHARED_STORE.get()
        if shared is not None and shared[0] == self.store_path.resolve():
            return shared[1]()
        return connect(self.store_path, read_only=read_only)

    # -- declarations -----------------------------------------------------------------------
    def dataset(self, name: str) -> DatasetEntry:
        try:
            return self.config.datasets[name]
        except KeyError:
            known = ", ".join(self.config.datasets) or "none yet"
            raise InputError(f"no dataset {name!r} in this project (datasets: {known})") from None

    def record_dataset(self, info) -> None:
        """Declare a dataset just imported or registered (``store.datasets.DatasetInfo``)."""
        self.config.datasets[info.name] = DatasetEntry(
            kind=info.kind,
            source=info.source,
            id_column=info.id_column,
            rows=info.rows,
            columns=info.columns,
            imported_at=datetime.now(timezone.utc),
            task=getattr(info, "task", None),
        )
        self.save()

    def default_dataset(self) -> str:
        """The project's only dataset, for commands where naming it would be a chore."""
        if len(self.config.datasets) == 1:
            return next(iter(self.config.datasets))
        known = ", ".join(self.config.datasets) or "none yet"
        raise InputError(f"name the dataset with --dataset (datasets: {known})")

    def task_of(self, dataset: str | None) -> str:
        """The task of a dataset: its own when it declares one, else the project's."""
        entry = self.config.datasets.get(dataset) if dataset else None
        if entry is not None and entry.task is not None:
            return entry.task
        return self.settings.task

    def recipe(self, name: str) -> RecipeEntry:
        try:
            return self.config.recipes[name]
        except KeyError:
            known = ", ".join(self.config.recipes) or "none yet"
            raise InputError(f"no recipe {name!r} in this project (recipes: {known})") from None

    def feature_columns(self, dataset: str) -> list[str]:
        """The feature columns: as set in the project, else every column but the ids/label."""
        if self.settings.feature_columns:
            return list(self.settings.feature_columns)
        entry = self.dataset(dataset)
        excluded = {entry.id_column, self.settings.id_column, self.settings.label_column}
        return [c for c in entry.columns if c not in excluded]
