"""Declaring recipes in ``project.toml`` and running them.

``add_recipe`` checks a declaration against the recipe's descriptor (roles, arity, what
each role accepts) and its params against the recipe's pydantic model before anything is
written. ``run_recipe`` validates again (the file may have been edited by hand), sets the
runtime context and runs the component's ``recipe.py``.
"""

from __future__ import annotations

import json
import re
import runpy

from pydantic import BaseModel, ValidationError

from active_labeling.errors import InputError
from active_labeling.flow.config_errors import config_error
from active_labeling.flow.descriptors import RecipeDescriptor, recipe_descriptor, recipe_folder
from active_labeling.flow.monitoring import MonitoringParams
from active_labeling.flow.project import Project, RecipeEntry
from active_labeling.flow.query_sampler import QuerySamplerParams
from active_labeling.flow.runtime import RecipeContext, running
from active_labeling.flow.train_model import TrainModelParams

#: Each recipe type's params model: the one source of its defaults and validation.
RECIPE_PARAMS: dict[str, type[BaseModel]] = {
    "train-model": TrainModelParams,
    "query-sampler": QuerySamplerParams,
    "monitoring": MonitoringParams,
}

#: The label store, readable as an input named ``labels``.
LABEL_STORE = "labels"

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


def parse_bindings(pairs: list[str], what: str) -> dict[str, list[str]]:
    """``["role=name", "role=other"]`` -> ``{"role": ["name", "other"]}``."""
    bindings: dict[str, list[str]] = {}
    for pair in pairs:
        role, sep, name = pair.partition("=")
        if not sep or not role or not name:
            raise InputError(f"--{what} {pair!r}: write ROLE=NAME")
        bindings.setdefault(role, []).append(name)
    return bindings


def _convert(param, raw: str):
    kind = param.type
    try:
        if kind == "INT":
            return int(raw)
        if kind == "DOUBLE":
            return float(raw)
        if kind == "BOOLEAN":
            if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(raw)
            return raw.lower() in {"true", "1", "yes"}
        if kind == "COLUMNS":
            return [c.strip() for c in raw.split(",") if c.strip()]
        if kind == "MAP":
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError(raw)
            return value
    except (ValueError, json.JSONDecodeError):
        expected = {"MAP": "a JSON object"}.get(kind, kind.lower())
        raise InputError(f"param {param.name}: {raw!r} is not {expected}") from None
    return raw


def parse_params(descriptor: RecipeDescriptor, pairs: list[str]) -> dict:
    """``["key=value"]`` -> typed values, by the descriptor's param types."""
    by_name = {p.name: p for p in descriptor.params}
    values = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise InputError(f"--param {pair!r}: write KEY=VALUE")
        if key not in by_name:
            raise InputError(f"unknown param {key!r}; the params are {', '.join(by_name)}")
        values[key] = _convert(by_name[key], raw)
    return values


def validate_params(recipe_type: str, params: dict, source: str) -> dict:
    """The params with defaults applied, or an error naming the field."""
    model = RECIPE_PARAMS.get(recipe_type)
    if model is None:
        raise InputError(f"recipe type {recipe_type!r} has no params model in this host")
    try:
        return model.model_validate(params).model_dump()
    except ValidationError as exc:
        raise config_error(source, exc) from None


def _produced(project: Project) -> set[str]:
    return {
        name
        for entry in project.config.recipes.values()
        for names in entry.outputs.values()
        for name in names
    }


def _check_bindings(project: Project, descriptor: RecipeDescriptor, entry: RecipeEntry) -> None:
    produced = _produced(project)
    saved_models = (
        {p.name for p in project.models_dir.iterdir()} if project.models_dir.is_dir() else set()
    )
    for direction, bindings, roles in (
        ("input", entry.inputs, descriptor.inputRoles),
        ("output", entry.outputs, descriptor.outputRoles),
    ):
        for role_name, names in bindings.items():
            role = descriptor.role(direction, role_name)
            if role.arity == "UNARY" and len(names) != 1:
                raise InputError(f"{direction} role {role_name!r} takes exactly one name")
            for name in names:
                if not _NAME.match(name):
                    raise InputError(f"{direction} {role_name}={name!r}: not a valid name")
                if direction == "output":
                    continue
                known = (
                    (
                        role.acceptsDataset
                        and (name in project.config.datasets or name == LABEL_STORE)
                    )
                    or (role.acceptsSavedModel and name in saved_models)
                    or name in produced
                )
                if not known:
                    raise InputError(
                        f"input {role_name}={name!r}: no such "
                        f"{'saved model' if role.acceptsSavedModel else 'dataset'} in this "
                        "project, and no recipe produces it"
                    )
        for role in roles:
            if role.required and role.name not in bindings:
                raise InputError(f"the {direction} role {role.name!r} is required")


def add_recipe(
    project: Project,
    recipe_type: str,
    name: str,
    *,
    inputs: dict[str, list[str]],
    outputs: dict[str, list[str]],
    params: dict,
) -> RecipeEntry:
    """Validate a recipe declaration and write it to ``project.toml``."""
    if not _NAME.match(name):
        raise InputError(
            f"recipe name {name!r} is not valid: a letter, then letters, digits, - or _"
        )
    descriptor = recipe_descriptor(recipe_type)
    entry = RecipeEntry(type=recipe_type, inputs=inputs, outputs=outputs, params=params)
    _check_bindings(project, descriptor, entry)
    validate_params(recipe_type, params, f"recipe {name}")
    project.config.recipes[name] = entry
    project.save()
    return entry


def run_recipe(project: Project, name: str, *, progress: bool = True, connection=None) -> None:
    """Run recipe ``name`` of the project: its ``recipe.py`` in the host's context."""
    entry = project.recipe(name)
    folder = recipe_folder(entry.type)
    config = validate_params(
        entry.type, entry.params, f"{project.config_path}: recipes.{name}.params"
    )
    _check_bindings(project, recipe_descriptor(entry.type), entry)
    con = connection or project.connect()
    try:
        with running(RecipeContext(project, con, name, entry, config, progress)):
            runpy.run_path(str(folder / "recipe.py"), run_name="__main__")
    finally:
        if connection is None:
            con.close()
