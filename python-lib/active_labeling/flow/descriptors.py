"""The plugin's JSON descriptors, loaded into pydantic models.

``plugin.json``, ``recipe.json``, ``step.json`` and ``trigger.json`` follow the conventions of
data-platform plugins (meta, inputRoles/outputRoles, params). A broken descriptor fails at
load with a message naming the file and the field.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from active_labeling.errors import InputError
from active_labeling.flow.config_errors import config_error


class _Descriptor(BaseModel):
    # Unknown keys are kept: a real platform reads more of them than this host does.
    model_config = ConfigDict(extra="allow")


class Meta(_Descriptor):
    label: str
    description: str = ""
    icon: str | None = None


class Role(_Descriptor):
    name: str
    label: str
    description: str = ""
    arity: Literal["UNARY", "NARY"] = "UNARY"
    required: bool = True
    acceptsDataset: bool = True
    acceptsSavedModel: bool = False
    acceptsManagedFolder: bool = False


class SelectChoice(_Descriptor):
    value: Any
    label: str


ParamType = Literal[
    "STRING", "INT", "DOUBLE", "BOOLEAN", "SELECT", "COLUMN", "COLUMNS", "MAP", "SEPARATOR"
]


class Param(_Descriptor):
    name: str
    label: str = ""
    type: ParamType
    description: str = ""
    defaultValue: Any = None
    mandatory: bool = False
    selectChoices: list[SelectChoice] | None = None


class PluginDescriptor(_Descriptor):
    id: str
    version: str
    meta: Meta


class RecipeDescriptor(_Descriptor):
    meta: Meta
    kind: Literal["PYTHON"] = "PYTHON"
    inputRoles: list[Role] = Field(default_factory=list)
    outputRoles: list[Role] = Field(default_factory=list)
    params: list[Param] = Field(default_factory=list)

    def role(self, direction: str, name: str) -> Role:
        roles = self.inputRoles if direction == "input" else self.outputRoles
        for role in roles:
            if role.name == name:
                return role
        names = ", ".join(r.name for r in roles) or "none"
        raise InputError(f"no {direction} role {name!r} (the {direction} roles are {names})")


def load_descriptor(path: Path, model: type[BaseModel]):
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such descriptor") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise config_error(str(path), exc) from None


#: Where a wheel carries the components (copied there by setup.py at build time).
PACKAGED_PLUGIN = Path(__file__).resolve().parents[1] / "_plugin"


def plugin_root() -> Path:
    """The folder holding ``plugin.json`` and the components (``recipes/``...).

    ``ACTIVE_LABELING_PLUGIN_ROOT`` overrides (a plugin folder of one's own); an installed
    wheel has them in the package (``active_labeling/_plugin``); an editable install or a
    checkout finds them at the top of the checkout this package lives in.
    """
    override = os.environ.get("ACTIVE_LABELING_PLUGIN_ROOT")
    if override:
        return Path(override)
    if (PACKAGED_PLUGIN / "plugin.json").is_file():
        return PACKAGED_PLUGIN
    for parent in Path(__file__).resolve().parents:
        if (parent / "plugin.json").is_file() and (parent / "recipes").is_dir():
            return parent
    raise InputError(
        f"cannot find the plugin's components (plugin.json and recipes/) in {PACKAGED_PLUGIN} "
        "nor in a checkout around it: reinstall the package (pip install active-labeling, "
        "or pip install -e . in a checkout), or set ACTIVE_LABELING_PLUGIN_ROOT to a plugin "
        "folder"
    )


@cache
def recipe_types(root: Path | None = None) -> dict[str, Path]:
    """Recipe type -> its folder, for every ``recipes/<type>/recipe.json``."""
    root = root or plugin_root()
    return {
        folder.name: folder
        for folder in sorted((root / "recipes").iterdir())
        if (folder / "recipe.json").is_file()
    }


def recipe_folder(recipe_type: str) -> Path:
    types = recipe_types()
    if recipe_type not in types:
        raise InputError(
            f"unknown recipe type {recipe_type!r}; the types are {', '.join(types) or 'none'}"
        )
    return types[recipe_type]


def recipe_descriptor(recipe_type: str) -> RecipeDescriptor:
    return load_descriptor(recipe_folder(recipe_type) / "recipe.json", RecipeDescriptor)


class StepDescriptor(_Descriptor):
    """``plugin/steps/<type>/step.json``: a scenario step."""

    meta: Meta
    params: list[Param] = Field(default_factory=list)


class TriggerDescriptor(_Descriptor):
    """``plugin/triggers/<type>/trigger.json``: a scenario trigger."""

    meta: Meta
    params: list[Param] = Field(default_factory=list)


@cache
def component_types(kind: Literal["steps", "triggers"], root: Path | None = None) -> dict:
    """Step or trigger type -> its folder, for every ``plugin/<kind>/<type>/<file>.json``."""
    root = root or plugin_root()
    descriptor = {"steps": "step.json", "triggers": "trigger.json"}[kind]
    folder = root / "plugin" / kind
    if not folder.is_dir():
        return {}
    return {item.name: item for item in sorted(folder.iterdir()) if (item / descriptor).is_file()}


def component_folder(kind: Literal["steps", "triggers"], component_type: str) -> Path:
    types = component_types(kind)
    if component_type not in types:
        what = kind[:-1]
        raise InputError(
            f"unknown {what} type {component_type!r}; the types are {', '.join(types) or 'none'}"
        )
    return types[component_type]


def step_descriptor(step_type: str) -> StepDescriptor:
    return load_descriptor(component_folder("steps", step_type) / "step.json", StepDescriptor)


def trigger_descriptor(trigger_type: str) -> TriggerDescriptor:
    folder = component_folder("triggers", trigger_type)
    return load_descriptor(folder / "trigger.json", TriggerDescriptor)
