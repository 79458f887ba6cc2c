"""Scenario triggers: their params, the state they read, and the seam a ``trigger.py`` uses.

A trigger is a plugin component (``plugin/triggers/<type>/trigger.json`` + ``trigger.py``).
The host evaluates it at each look of the scheduler: it sets the context (the trigger's
params and the scenario's :class:`TriggerState`), runs ``trigger.py``, and the scenario is
due if the script called :func:`fire`. The names mirror a data-platform plugin's trigger
runtime (``get_trigger_config``, ``fire``). This module never runs a scenario and never
imports the project (``flow.project`` validates triggers with it).
"""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from active_labeling.errors import ActiveLabelingError
from active_labeling.flow.cron import CronSchedule


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EveryNLabelsParams(_Params):
    """Fires once ``every_n_labels`` labeled events came in since the last successful run."""

    every_n_labels: int = Field(default=50, ge=1)


class CronParams(_Params):
    """Fires when a minute of the crontab schedule passed since the last run."""

    cron: str
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _parses(cls, value: str) -> str:
        CronSchedule.parse(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        CronSchedule.parse("* * * * *", value)
        return value

    def schedule(self) -> CronSchedule:
        return CronSchedule.parse(self.cron, self.timezone)


class ManualParams(_Params):
    """Never fires: the scenario runs when someone asks."""


#: Each trigger type's params model: the one source of its defaults and validation.
TRIGGER_PARAMS: dict[str, type[BaseModel]] = {
    "every-n-labels": EveryNLabelsParams,
    "cron": CronParams,
    "manual": ManualParams,
}


@dataclass(frozen=True)
class TriggerState:
    """What a trigger knows about its scenario when the scheduler looks.

    ``since`` is the start of the scenario's last run, or when the scheduler started if
    that is later (a schedule missed while nothing ran is not caught up). ``new_labels``
    counts labeled events since the start of the last successful run (since the store began
    when none succeeded). ``retry_wait`` is true while the last run failed less than the
    scheduler's retry delay ago, so that a failing scenario is not restarted at every look.
    """

    now: datetime
    since: datetime
    new_labels: int
    retry_wait: bool = False
    last_status: str | None = None


@dataclass
class _TriggerContext:
    config: dict[str, Any]
    state: TriggerState
    fired: list[str] = field(default_factory=list)


_CURRENT: ContextVar[_TriggerContext | None] = ContextVar("trigger_context", default=None)


def _context() -> _TriggerContext:
    context = _CURRENT.get()
    if context is None:
        raise ActiveLabelingError("no trigger is being evaluated: the scheduler runs triggers")
    return context


@contextmanager
def evaluating(config: dict[str, Any], state: TriggerState) -> Iterator[_TriggerContext]:
    token = _CURRENT.set(_TriggerContext(config, state))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def get_trigger_config() -> dict[str, Any]:
    """The trigger's params, defaults applied."""
    return dict(_context().config)


def get_trigger_state() -> TriggerState:
    return _context().state


def fire(reason: str = "") -> None:
    """Make the scenario due; ``reason`` is logged with the run (``trigger`` column)."""
    _context().fired.append(reason)


def evaluate(folder, config: dict[str, Any], state: TriggerState) -> str | None:
    """Run ``folder/trigger.py`` with ``config`` and ``state``; the reason it fired, or None."""
    with evaluating(config, state) as context:
        runpy.run_path(str(folder / "trigger.py"), run_name="__main__")
    if not context.fired:
        return None
    return context.fired[0] or "fired"
