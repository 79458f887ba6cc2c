"""Running scenarios: a run's steps in order, logged in the store; triggers; the scheduler.

:class:`ScenarioRunner` runs one scenario of ``project.toml`` (its steps, in order, on one
connection) and logs the run in the store's ``scenario_runs`` table: inserted as
``running``, then given its status (``succeeded``, ``failed``), duration, error and the log
of each step. A scenario still running is not started again: the second request is logged
as ``skipped``. It also answers which scenarios' triggers fire (:meth:`~ScenarioRunner.due`).

:class:`Scheduler` is a daemon thread that asks the runner at each look and runs what is
due, one run at a time. A scenario's error is logged in its run and never ends the thread.

Neither ever changes a label event or a saved model by itself: the steps' recipes do that.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from active_labeling.errors import ActiveLabelingError, InputError
from active_labeling.flow.descriptors import component_folder
from active_labeling.flow.project import Project, ScenarioEntry
from active_labeling.flow.scenario_config import (
    DEFAULT_RECIPES,
    DEFAULT_SCENARIO,
    default_scenarios,
)
from active_labeling.flow.steps import run_step, step_problems
from active_labeling.flow.triggers import TriggerState, evaluate

logger = logging.getLogger("active_labeling.scenarios")

#: Seconds a scenario whose last run failed waits before its trigger may fire again.
DEFAULT_RETRY_SECONDS = 300.0

# Runs in progress in this process, by (store path, scenario): shared by every runner of
# the process (the scheduler's and a forwarded `scenario run`), so that one scenario never
# runs twice at once. The store has a single writing process, so a row still 'running'
# that is not in here belongs to a process that died.
_RUNNING: dict[tuple[str, str], int] = {}
_RUNNING_LOCK = threading.Lock()


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class RunRecord:
    """One scenario run, as logged in ``scenario_runs``."""

    run_id: int
    scenario: str
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    duration_s: float | None = None
    error: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (timestamps as ISO strings)."""
        record = asdict(self)
        for key in ("started_at", "finished_at"):
            if record[key] is not None:
                record[key] = record[key].isoformat()
        return record


def _store_key(project: Project) -> str:
    return str(project.store_path.resolve())


def scenario_problems(project: Project, name: str) -> list[str]:
    """What keeps scenario ``name`` from running (empty when it can run)."""
    entry = _scenario(project, name)
    problems = []
    try:
        component_folder("triggers", entry.trigger.type)
    except InputError as exc:
        problems.append(f"scenarios.{name}.trigger: {exc}")
    for position, step in enumerate(entry.steps):
        problems += step_problems(project, step, f"scenarios.{name}.steps.{position}")
    return problems


def _scenario(project: Project, name: str) -> ScenarioEntry:
    try:
        return project.config.scenarios[name]
    except KeyError:
        known = ", ".join(project.config.scenarios) or "none"
        raise InputError(f"no scenario {name!r} in this project (scenarios: {known})") from None


def _label_high_water(con) -> int:
    return con.execute("SELECT coalesce(max(event_id), 0) FROM label_events").fetchall()[0][0]


def _latest_generation(con) -> int:
    return con.execute("SELECT coalesce(max(generation_id), 0) FROM queue_generations").fetchall()[
        0
    ][0]


class ScenarioRunner:
    """Runs the scenarios of a project and logs each run in its store.

    Parameters
    ----------
    project : Project
        ``project.toml`` is read again before each run and each look at the triggers, so
        that edits made while the server runs are taken up.
    connect : callable
        Returns a DuckDB connection or cursor to use for one run or one look (the server
        passes a cursor factory of its own connection; the CLI ``project.connect``). What it
        returns is closed afterwards.
    on_generation : callable, optional
        Called with no argument after a step wrote a new queue generation (the labeling
        service's ``refresh``), so the app hands it out at the next request.
    retry_seconds : float
        After a failed run, how long the every-N-labels trigger waits before firing again.
    progress, echo : bool
        Progress bars for the recipes, and step messages on stderr (the CLI sets both).
    """

    def __init__(
        self,
        project: Project,
        connect: Callable[[], Any],
        *,
        on_generation: Callable[[], None] | None = None,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        progress: bool = False,
        echo: bool = False,
    ):
        self.project = project
        self.connect = connect
        self.on_generation = on_generation
        self.retry_seconds = float(retry_seconds)
        self.progress = progress
        self.echo = echo
        self.started_at = _now()
        self._recovered = False

    # -- configuration ----------------------------------------------------------------------
    def reload(self) -> Project:
        """``project.toml`` as it is now (the one loaded before if it no longer parses)."""
        try:
            self.project = Project.open(self.project.root)
        except ActiveLabelingError as exc:
            logger.warning("project.toml could not be read again, keeping the last one: %s", exc)
        return self.project

    def scenarios(self) -> dict[str, ScenarioEntry]:
        return dict(self.reload().config.scenarios)

    def _recover(self, con) -> None:
        """Mark runs left 'running' by a process that stopped as failed (once)."""
        if self._recovered:
            return
        with _RUNNING_LOCK:
            ours = [
                run_id
                for (store, _), run_id in _RUNNING.items()
                if store == _store_key(self.project)
            ]
            con.execute(
                "UPDATE scenario_runs SET status = 'failed', finished_at = ?, "
                "error = 'interrupted: the process running it stopped' "
                "WHERE status = 'running' AND NOT list_contains(?::BIGINT[], run_id)",
                [_now(), ours],
            )
        self._recovered = True

    # -- running ----------------------------------------------------------------------------
    def run(
        self,
        name: str,
        trigger: str = "manual",
        *,
        on_generation: Callable[[], None] | None = None,
    ) -> RunRecord:
        """Run scenario ``name`` now; its record once it ended (or was skipped).

        Raises ``InputError`` only for an unknown scenario; whatever goes wrong in a step is
        logged in the run (status ``failed``, the error) and returned.
        """
        project = self.reload()
        entry = _scenario(project, name)
        on_generation = on_generation or self.on_generation
        key = (_store_key(project), name)
        con = self.connect()
        try:
            self._recover(con)
            with _RUNNING_LOCK:
                running_id = _RUNNING.get(key)
                if running_id is None:
                    record = self._start(con, name, trigger)
                    _RUNNING[key] = record.run_id
            if running_id is not None:
                return self._skip(con, name, trigger, running_id)
            try:
                self._run_steps(project, con, name, entry, record, on_generation)
            finally:
                with _RUNNING_LOCK:
                    _RUNNING.pop(key, None)
            return record
        finally:
            con.close()

    def _start(self, con, name: str, trigger: str) -> RunRecord:
        started = _now()
        seen = _label_high_water(con)
        run_id = con.execute("SELECT nextval('scenario_run_ids')").fetchall()[0][0]
        con.execute(
            "INSERT INTO scenario_runs (run_id, scenario, trigger, status, started_at, steps, "
            "label_events_seen) VALUES (?, ?, ?, 'running', ?, '[]', ?)",
            [run_id, name, trigger, started, seen],
        )
        return RunRecord(run_id, name, trigger, "running", started)

    def _skip(self, con, name: str, trigger: str, running_id: int) -> RunRecord:
        record = self._start(con, name, trigger)
        record.status = "skipped"
        record.error = f"scenario {name!r} is still running (run {running_id}); not started twice"
        self._finish(con, record)
        logger.info(record.error)
        return record

    def _finish(self, con, record: RunRecord) -> None:
        record.finished_at = _now()
        record.duration_s = (record.finished_at - record.started_at).total_seconds()
        con.execute(
            "UPDATE scenario_runs SET status = ?, finished_at = ?, duration_s = ?, error = ?, "
            "steps = ? WHERE run_id = ?",
            [
                record.status,
                record.finished_at,
                record.duration_s,
                record.error,
                json.dumps(record.steps, default=str),
                record.run_id,
            ],
        )

    def _run_steps(self, project, con, name, entry, record: RunRecord, on_generation) -> None:
        problems = scenario_problems(project, name)
        halted = None
        if problems:
            record.status, record.error = "failed", "; ".join(problems)
        for position, step in enumerate(entry.steps):
            log: dict[str, Any] = {"step": position, "type": step.type}
            if problems or halted:
                log["status"] = "skipped"
                record.steps.append(log)
                continue
            started = time.perf_counter()
            generation = _latest_generation(con)
            try:
                outcome = run_step(
                    project,
                    con,
                    step,
                    source=f"scenarios.{name}.steps.{position}",
                    progress=self.progress,
                    echo=self.echo,
                )
            except Exception as exc:  # the run's log is where a step's failure goes
                message = str(exc) if isinstance(exc, ActiveLabelingError) else repr(exc)
                if not isinstance(exc, ActiveLabelingError):
                    logger.error(
                        "scenario %s, step %s failed:\n%s", name, position, traceback.format_exc()
                    )
                log |= {"status": "failed", "error": message}
                record.status = "failed"
                record.error = f"step {position} ({step.type}): {message}"
                problems = [record.error]  # skip the steps after it
            else:
                log |= {"status": "succeeded", "result": outcome.result}
                if outcome.messages:
                    log["messages"] = outcome.messages
                if outcome.halted:
                    halted = log["halted"] = outcome.halted
            log["duration_s"] = round(time.perf_counter() - started, 3)
            record.steps.append(log)
            if on_generation is not None and _latest_generation(con) != generation:
                try:
                    on_generation()
                except Exception:  # the run went well; the app looks again within a second
                    logger.exception("on_generation failed after scenario %s", name)
        if record.status == "running":
            record.status = "succeeded"
        self._finish(con, record)

    # -- triggers ---------------------------------------------------------------------------
    def trigger_state(self, con, name: str, now: datetime) -> TriggerState:
        runs = con.execute(
            "SELECT status, started_at, finished_at, label_events_seen FROM scenario_runs "
            "WHERE scenario = ? AND status <> 'skipped' ORDER BY run_id DESC LIMIT 1",
            [name],
        ).fetchall()
        success = con.execute(
            "SELECT label_events_seen FROM scenario_runs WHERE scenario = ? AND "
            "status = 'succeeded' ORDER BY run_id DESC LIMIT 1",
            [name],
        ).fetchall()
        seen = success[0][0] if success else 0
        new_labels = con.execute(
            "SELECT count(*) FROM label_events WHERE status = 'labeled' AND event_id > ?",
            [seen],
        ).fetchall()[0][0]
        since = self.started_at
        retry_wait = False
        last_status = None
        if runs:
            last_status, started_at, finished_at, _ = runs[0]
            since = max(since, started_at)
            if last_status == "failed" and finished_at is not None:
                retry_wait = now - finished_at < timedelta(seconds=self.retry_seconds)
        return TriggerState(
            now=now,
            since=since,
            new_labels=int(new_labels),
            retry_wait=retry_wait,
            last_status=last_status,
        )

    def due_triggers(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """(scenario, reason) of every scenario whose trigger fires now, in file order.

        A scenario that cannot run (a recipe not declared, a step unknown) or that is
        running is left out.
        """
        now = now or _now()
        project = self.reload()
        fired = []
        con = self.connect()
        try:
            self._recover(con)
            for name, entry in project.config.scenarios.items():
                with _RUNNING_LOCK:
                    if (_store_key(project), name) in _RUNNING:
                        continue
                if scenario_problems(project, name):
                    continue
                state = self.trigger_state(con, name, now)
                folder = component_folder("triggers", entry.trigger.type)
                reason = evaluate(folder, entry.trigger.params(), state)
                if reason is not None:
                    fired.append((name, reason))
        finally:
            con.close()
        return fired

    def due(self, now: datetime | None = None) -> list[str]:
        """Names of the scenarios whose trigger fires now."""
        return [name for name, _ in self.due_triggers(now)]


class Scheduler:
    """A daemon thread that runs the scenarios whose triggers fire, one run at a time.

    Parameters
    ----------
    runner : ScenarioRunner
    poll_seconds : float
        Time between two looks at the triggers (a cron minute is seen within it).
    on_generation : callable, optional
        Passed to each run: called after a step wrote a new queue generation.
    """

    def __init__(
        self,
        runner: ScenarioRunner,
        *,
        poll_seconds: float = 10.0,
        on_generation: Callable[[], None] | None = None,
    ):
        if not poll_seconds > 0:
            raise InputError(f"poll_seconds must be positive, got {poll_seconds!r}")
        self.runner = runner
        self.poll_seconds = float(poll_seconds)
        self.on_generation = on_generation
        self.last_error: str | None = None
        self.runs: int = 0
        self._requests: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Scheduler:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name="active-labeling-scheduler", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop looking; waits up to ``timeout`` seconds for a run in progress to end."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def request(self, name: str) -> None:
        """Run scenario ``name`` at the next look (a manual run that does not block)."""
        _scenario(self.runner.reload(), name)
        with self._lock:
            if name not in self._requests:
                self._requests.append(name)
        self._wake.set()

    def tick(self, now: datetime | None = None) -> list[RunRecord]:
        """One look: the runs requested, then those due; each run to its end."""
        records = []
        with self._lock:
            wanted = [(name, "manual") for name in self._requests]
            self._requests.clear()
        try:
            due = self.runner.due_triggers(now)
        except Exception as exc:  # a broken project.toml or store: log it, look again later
            self.last_error = f"looking at the triggers failed: {exc!r}"
            logger.exception("scenario triggers could not be evaluated")
            due = []
        asked = {name for name, _ in wanted}
        wanted += [(name, reason) for name, reason in due if name not in asked]
        for name, reason in wanted:
            if self._stop.is_set():
                break
            try:
                record = self.runner.run(name, reason, on_generation=self.on_generation)
            except Exception as exc:
                self.last_error = f"scenario {name!r}: {exc!r}"
                logger.exception("scenario %s could not run", name)
                continue
            self.runs += 1
            if record.status == "failed":
                self.last_error = f"scenario {name!r}, run {record.run_id}: {record.error}"
            records.append(record)
        return records

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._wake.wait(self.poll_seconds)
            self._wake.clear()


# --- reading the log -------------------------------------------------------------------------


def list_runs(con, scenario: str | None = None, limit: int = 20) -> pd.DataFrame:
    """The latest runs, newest first; ``steps`` parsed to lists."""
    where = "WHERE scenario = ?" if scenario else ""
    frame = con.execute(
        "SELECT run_id, scenario, trigger, status, started_at, finished_at, duration_s, error, "
        f"steps FROM scenario_runs {where} ORDER BY run_id DESC LIMIT ?",
        [scenario, int(limit)] if scenario else [int(limit)],
    ).df()
    frame["steps"] = [json.loads(s) if s else [] for s in frame["steps"]]
    return frame


# --- the default recipes ---------------------------------------------------------------------


#: The default scenario's strategy in a multi-label project (docs/multilabel-study.md).
MULTI_LABEL_DEFAULT_STRATEGY = "wkmeans"


def declare_default_recipes(
    project: Project,
    dataset: str,
    *,
    holdout: str | None = None,
    model: str | None = None,
    queue: str | None = None,
) -> list[str]:
    """Declare the recipes the default scenario runs, those not declared yet.

    ``train`` (train-model: dataset -> ``model``), ``query`` (query-sampler: dataset and
    ``model`` -> ``queue``) and ``monitor`` (monitoring: dataset, labels, ``model`` and
    ``holdout`` if given -> ``metrics`` and ``advice``). Gives the project the default
    scenario too when it has none. Returns the names declared.

    ``model`` and ``queue`` default to what the ``train`` and ``query`` recipes already
    declared write, if they exist, else to ``model`` and ``queue``. A multi-label project's
    ``query`` ranks with ``wkmeans`` weighted by the mean binary uncertainty (the recipe's
    default, margin, ranks single-label models only; in the multi-label study WKMeans beat
    random on 2 of 4 data sets and lost on none).
    """
    from active_labeling.flow.recipes import add_recipe

    project.dataset(dataset)
    if holdout is not None:
        project.dataset(holdout)
    model = model or _declared_output(project, "train-model", "model") or "model"
    queue = queue or _declared_output(project, "query-sampler", "queue") or "queue"
    declared = []
    recipes = {
        "train-model": dict(
            inputs={"dataset": [dataset], "labels": ["labels"]}, outputs={"model": [model]}
        ),
        "query-sampler": dict(
            inputs={"pool": [dataset], "model": [model]}, outputs={"queue": [queue]}
        ),
        "monitoring": dict(
            inputs={
                "pool": [dataset],
                "labels": ["labels"],
                "model": [model],
                **({"holdout": [holdout]} if holdout else {}),
            },
            outputs={"metrics": ["metrics"], "advice": ["advice"]},
        ),
    }
    for recipe_type, bindings in recipes.items():
        name = DEFAULT_RECIPES[recipe_type]
        if name in project.config.recipes:
            continue
        params = (
            {"strategy": MULTI_LABEL_DEFAULT_STRATEGY}
            if recipe_type == "query-sampler" and project.settings.multi_label
            else {}
        )
        add_recipe(project, recipe_type, name, params=params, **bindings)
        declared.append(name)
    if not project.config.scenarios:
        project.config.scenarios.update(default_scenarios())
        project.save()
    return declared


def _declared_output(project: Project, recipe_type: str, role: str) -> str | None:
    """What the default recipe of ``recipe_type`` writes as ``role``, if it is declared."""
    entry = project.config.recipes.get(DEFAULT_RECIPES[recipe_type])
    if entry is None or entry.type != recipe_type:
        return None
    names = entry.outputs.get(role) or []
    return names[0] if names else None


__all__ = [
    "DEFAULT_SCENARIO",
    "RunRecord",
    "ScenarioRunner",
    "Scheduler",
    "declare_default_recipes",
    "list_runs",
    "scenario_problems",
]
