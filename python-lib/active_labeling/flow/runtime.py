"""The seam a ``recipe.py`` uses to reach its inputs, outputs and config.

The names mirror a data-platform plugin's runtime (``get_input_names_for_role``,
``get_output_names_for_role``, ``get_recipe_config``), so a component folder could run on a
platform that supplies the same names. The host sets the context, then runs ``recipe.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from active_labeling.errors import ActiveLabelingError
from active_labeling.flow.project import Project, RecipeEntry


@dataclass
class RecipeContext:
    project: Project
    connection: Any
    name: str
    entry: RecipeEntry
    config: dict[str, Any]
    progress: bool = True


_CURRENT: ContextVar[RecipeContext | None] = ContextVar("recipe_context", default=None)


def _context() -> RecipeContext:
    context = _CURRENT.get()
    if context is None:
        raise ActiveLabelingError(
            "no recipe is running: run recipes with `active-labeling run PROJECT NAME`"
        )
    return context


@contextmanager
def running(context: RecipeContext) -> Iterator[RecipeContext]:
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def get_input_names_for_role(role: str) -> list[str]:
    """Names of the inputs bound to ``role`` (empty if the role is optional and unbound)."""
    return list(_context().entry.inputs.get(role, []))


def get_output_names_for_role(role: str) -> list[str]:
    return list(_context().entry.outputs.get(role, []))


def get_recipe_config() -> dict[str, Any]:
    """The recipe's parameters, defaults applied."""
    return dict(_context().config)


def get_project() -> Project:
    return _context().project


def get_connection():
    """The open connection to the project store (owned by the host)."""
    return _context().connection


def progress_bar(description: str, total: int | None = None, unit: str = "row") -> tqdm:
    """A progress bar on stderr, silent when the host runs without progress display."""
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        unit_scale=True,
        file=sys.stderr,
        disable=not _context().progress,
        leave=False,
    )


def report(message: str) -> None:
    """A line for the user about what the recipe did."""
    print(message)
