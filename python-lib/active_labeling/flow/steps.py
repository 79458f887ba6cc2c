"""Scenario steps: their params, and the seam a ``step.py`` uses to do its one thing.

A step is a plugin component (``plugin/steps/<type>/step.json`` + ``step.py``). The runner
(``flow.scenarios``) validates the step's params against its pydantic model here, sets the
context and runs ``step.py``, which reads its config (:func:`get_step_config`), calls the
library (most steps run one of the project's recipes, :func:`run_recipe`), and records
what it made (:func:`set_result`) or that the scenario should stop there (:func:`halt`).
The names mirror a data-platform plugin's step runtime.
"""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from active_labeling.errors import ActiveLabelingError, InputError
from active_labeling.flow.config_errors import config_error
from active_labeling.flow.descriptors import component_folder
from active_labeling.flow.project import Project
from active_labeling.flow.scenario_config import DEFAULT_RECIPES, StepEntry


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainModelStepParams(_Params):
    """Run the project's train-model recipe ``recipe``."""

    recipe: str = DEFAULT_RECIPES["train-model"]


class QuerySamplerStepParams(_Params):
    """Run the project's query-sampler recipe ``recipe`` (a new queue generation)."""

    recipe: str = DEFAULT_RECIPES["query-sampler"]


class MonitoringStepParams(_Params):
    """Run the project's monitoring recipe ``recipe``."""

    recipe: str = DEFAULT_RECIPES["monitoring"]


Advice = Literal["continue", "stop", "check"]


class StoppingCheckParams(_Params):
    """Read the latest advice of monitoring recipe ``recipe``; end the scenario there when
    the advice is one of ``halt_on``."""

    recipe: str = DEFAULT_RECIPES["monitoring"]
    halt_on: list[Advice] = Field(default_factory=lambda: ["stop"])


class LabelErrorsStepParams(_Params):
    """Score every label with the latest version of the model that train-model recipe
    ``recipe`` writes, out of fold (confident learning), and mark the likely label errors:
    the review queue shows them first."""

    recipe: str = DEFAULT_RECIPES["train-model"]
    cv_folds: int = Field(default=5, ge=2, le=20)
    random_state: int = 0


class ExportStepParams(_Params):
    """Write the current labels, the metrics or the stopping advice of ``dataset`` to
    ``exports/<file>`` (Parquet or CSV by the suffix), replacing the previous copy."""

    what: Literal["labels", "metrics", "advice"] = "labels"
    dataset: str | None = None
    file: str | None = None


#: Each step type's params model: the one source of its defaults and validation.
STEP_PARAMS: dict[str, type[BaseModel]] = {
    "train-model": TrainModelStepParams,
    "query-sampler": QuerySamplerStepParams,
    "monitoring": MonitoringStepParams,
    "stopping-check": StoppingCheckParams,
    "label-errors": LabelErrorsStepParams,
    "export": ExportStepParams,
}

#: Steps that run a recipe of the same type.
RECIPE_STEPS = ("train-model", "query-sampler", "monitoring")
#: Steps that read what a recipe of another type made: that type.
READS_RECIPE = {"stopping-check": "monitoring", "label-errors": "train-model"}


def validate_step_params(step_type: str, params: dict, source: str) -> dict:
    """The params with defaults applied, or an ``InputError`` naming the field."""
    model = STEP_PARAMS.get(step_type)
    if model is None:
        raise InputError(
            f"{source}: unknown step type {step_type!r}; the types are {', '.join(STEP_PARAMS)}"
        )
    try:
        return model.model_validate(params).model_dump()
    except ValidationError as exc:
        raise config_error(source, exc) from None


def step_problems(project: Project, step: StepEntry, source: str) -> list[str]:
    """What keeps ``step`` from running in ``project`` (empty when it can run)."""
    try:
        component_folder("steps", step.type)
        params = validate_step_params(step.type, step.params, source)
    except InputError as exc:
        return [str(exc)]
    recipe = params.get("recipe")
    if recipe is None:
        return []
    expected = step.type if step.type in RECIPE_STEPS else READS_RECIPE[step.type]
    entry = project.config.recipes.get(recipe)
    if entry is None:
        return [
            f"{source}: no recipe {recipe!r} in this project; declare it (`active-labeling "
            f"scenario setup {project.root} --dataset NAME` declares the default ones)"
        ]
    if entry.type != expected:
        return [f"{source}: recipe {recipe!r} is a {entry.type} recipe, not {expected}"]
    return []


# --- the seam -------------------------------------------------------------------------------


@dataclass
class StepContext:
    project: Project
    connection: Any
    step: StepEntry
    config: dict[str, Any]
    progress: bool = False
    echo: bool = False
    result: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    halted: str | None = None


_CURRENT: ContextVar[StepContext | None] = ContextVar("step_context", default=None)


def _context() -> StepContext:
    context = _CURRENT.get()
    if context is None:
        raise ActiveLabelingError(
            "no scenario step is running: run scenarios with `active-labeling scenario run`"
        )
    return context


@contextmanager
def running(context: StepContext) -> Iterator[StepContext]:
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def get_step_config() -> dict[str, Any]:
    """The step's params, defaults applied."""
    return dict(_context().config)


def get_project() -> Project:
    return _context().project


def get_connection():
    return _context().connection


def report(message: str) -> None:
    """A line for the run's log (and the terminal, when the runner echoes)."""
    context = _context()
    context.messages.append(message)
    if context.echo:
        print(message)


def set_result(result: dict[str, Any]) -> None:
    """What the step made (model version, queue generation, advice...), for the run's log."""
    _context().result.update(result)


def halt(reason: str) -> None:
    """End the scenario after this step, successfully: the steps after it are skipped."""
    _context().halted = reason


def run_recipe(name: str, expected_type: str) -> dict[str, Any]:
    """Run the project's recipe ``name`` on the step's connection; what it made."""
    from active_labeling.flow.recipes import run_recipe as run_project_recipe

    context = _context()
    entry = context.project.recipe(name)
    if entry.type != expected_type:
        raise InputError(f"recipe {name!r} is a {entry.type} recipe, not {expected_type}")
    run_project_recipe(
        context.project, name, progress=context.progress, connection=context.connection
    )
    return recipe_outcome(context.project, context.connection, name)


def score_labels(params: LabelErrorsStepParams) -> dict[str, Any]:
    """Find the likely label errors of train-model recipe ``params.recipe``'s dataset with
    its model's latest version, on the step's connection; what was found."""
    from active_labeling.flow.label_errors import LabelErrorParams, find_label_errors

    context = _context()
    entry = context.project.recipe(params.recipe)
    if entry.type != "train-model":
        raise InputError(f"recipe {params.recipe!r} is a {entry.type} recipe, not train-model")
    run = find_label_errors(
        context.connection,
        context.project,
        dataset=entry.inputs["dataset"][0],
        model=entry.outputs["model"][0],
        params=LabelErrorParams(cv_folds=params.cv_folds, random_state=params.random_state),
    )
    return {
        "dataset": run.dataset,
        "model": run.model_name,
        "version": run.model_version,
        "labels_scored": run.n_labels,
        "suspects": run.n_suspects,
        "scored_before": run.scored_before,
    }


def recipe_outcome(project: Project, con, name: str) -> dict[str, Any]:
    """What recipe ``name`` last made: the model version, queue generation or advice."""
    from active_labeling.flow.monitoring import latest_advice
    from active_labeling.models import load_model
    from active_labeling.store.queue import latest_generation

    entry = project.recipe(name)
    outcome: dict[str, Any] = {"recipe": name}
    if entry.type == "train-model":
        saved = load_model(project.models_dir, entry.outputs["model"][0])
        outcome |= {
            "model": saved.name,
            "version": saved.version,
            "training_rows": saved.meta.training_rows,
        }
    elif entry.type == "query-sampler":
        queue = entry.outputs["queue"][0]
        outcome |= {"queue": queue, "generation_id": latest_generation(con, queue)}
    elif entry.type == "monitoring":
        advice = latest_advice(con, entry.inputs["model"][0], dataset=entry.inputs["pool"][0])
        if advice is not None:
            outcome |= {
                "advice": advice["advice"],
                "model_version": advice["model_version"],
                "n_labels": advice["n_labels"],
            }
    return outcome


def export_path(project: Project, file: str | None, what: str) -> Path:
    """``exports/<file>``; refuses a path leaving ``exports/`` or of another type."""
    relative = PurePosixPath(file or f"{what}.parquet")
    if relative.is_absolute() or ".." in relative.parts:
        raise InputError(f"export file {file!r}: give a path inside exports/, such as labels.csv")
    if relative.suffix.lower() not in (".parquet", ".csv"):
        raise InputError(f"export file {file!r}: the name must end in .parquet or .csv")
    return project.exports_dir / Path(*relative.parts)


def export_dataset_name(project: Project, dataset: str | None) -> str:
    """The dataset an export step reads: the one named, else the project's only one."""
    if dataset is not None:
        project.dataset(dataset)
        return dataset
    if len(project.config.datasets) == 1:
        return next(iter(project.config.datasets))
    known = ", ".join(project.config.datasets) or "none yet"
    raise InputError(f"name the dataset in the step's params (dataset = ...); datasets: {known}")


def export_table(con, what: str, dataset: str, path: Path, rule=None) -> Path:
    """Write ``dataset``'s labels (decided under ``rule``, ``store.consensus``), metrics or
    stopping advice to ``path``."""
    from active_labeling.store.datasets import copy_query_to_file, require_dataset
    from active_labeling.store.labels import export_labels

    require_dataset(con, dataset)
    if what == "labels":
        return export_labels(con, dataset, path, rule)
    table = {"metrics": "metrics", "advice": "stopping_advice"}.get(what)
    if table is None:
        raise InputError(f"cannot export {what!r}: choose labels, metrics or advice")
    escaped = dataset.replace("'", "''")
    return copy_query_to_file(
        con,
        f"SELECT * FROM {table} WHERE dataset = '{escaped}' "
        "ORDER BY model_name, n_labels, TRY_CAST(model_version AS BIGINT), computed_at",
        path,
    )


@dataclass
class StepOutcome:
    result: dict[str, Any]
    messages: list[str]
    halted: str | None


def run_step(
    project: Project, con, step: StepEntry, *, source: str, progress=False, echo=False
) -> StepOutcome:
    """Validate ``step``'s params and run its ``step.py`` in the step's context."""
    folder = component_folder("steps", step.type)
    config = validate_step_params(step.type, step.params, source)
    context = StepContext(project, con, step, config, progress=progress, echo=echo)
    with running(context):
        runpy.run_path(str(folder / "step.py"), run_name="__main__")
    return StepOutcome(context.result, context.messages, context.halted)
