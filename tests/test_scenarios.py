"""Scenarios: cron, the project's declarations, steps and triggers, the runner's log, the
scheduler, the CLI, and the whole loop with simulated labelers through the HTTP API."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from loop_helpers import label, make_blobs_project

from active_labeling.cli import main
from active_labeling.errors import InputError
from active_labeling.flow.cron import CronSchedule
from active_labeling.flow.descriptors import (
    component_types,
    step_descriptor,
    trigger_descriptor,
)
from active_labeling.flow.monitoring import latest_advice, metric_history
from active_labeling.flow.project import Project
from active_labeling.flow.scenario_config import ScenarioEntry, StepEntry, TriggerEntry
from active_labeling.flow.scenarios import (
    ScenarioRunner,
    Scheduler,
    declare_default_recipes,
    list_runs,
    scenario_problems,
)
from active_labeling.flow.steps import STEP_PARAMS
from active_labeling.flow.triggers import TRIGGER_PARAMS
from active_labeling.labeling.app import create_app
from active_labeling.labeling.auth import add_user
from active_labeling.models import list_models

UTC = timezone.utc


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- cron ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("* * * * *", at(2024, 1, 1, 10, 0, 30), at(2024, 1, 1, 10, 1)),
        ("*/15 * * * *", at(2024, 1, 1, 10, 16), at(2024, 1, 1, 10, 30)),
        ("5,35 2-4 * * *", at(2024, 1, 1, 4, 40), at(2024, 1, 2, 2, 5)),
        ("0 0 1 * *", at(2024, 12, 15), at(2025, 1, 1)),  # across a year
        ("0 9 * * mon-fri", at(2024, 1, 5, 9, 0), at(2024, 1, 8, 9, 0)),  # Fri -> Mon
        ("0 12 * * 7", at(2024, 1, 1), at(2024, 1, 7, 12, 0)),  # 7 is Sunday too
        ("0 0 13 * fri", at(2024, 1, 1), at(2024, 1, 5)),  # day OR weekday when both set
        ("30 6 29 feb *", at(2024, 3, 1), at(2028, 2, 29, 6, 30)),  # leap days only
        ("10-50/20 * * * *", at(2024, 1, 1, 10, 31), at(2024, 1, 1, 10, 50)),
        ("@daily", at(2024, 1, 1, 0, 0), at(2024, 1, 2)),
        ("@hourly", at(2024, 1, 1, 0, 59, 59), at(2024, 1, 1, 1, 0)),
        ("0 0 * jan,jul *", at(2024, 2, 1), at(2024, 7, 1)),
    ],
)
def test_cron_next_minute(expression, after, expected):
    assert CronSchedule.parse(expression).next_after(after) == expected


def test_cron_in_a_time_zone_and_impossible_dates():
    paris = CronSchedule.parse("0 2 * * *", "Europe/Paris")
    # 02:00 in Paris is 01:00 UTC in winter, 00:00 UTC in summer.
    assert paris.next_after(at(2024, 1, 10, 12)) == at(2024, 1, 11, 1, 0)
    assert paris.next_after(at(2024, 7, 10, 12)) == at(2024, 7, 11, 0, 0)
    assert CronSchedule.parse("0 0 30 2 *").next_after(at(2024, 1, 1)) is None
    schedule = CronSchedule.parse("0 * * * *")
    assert schedule.due(at(2024, 1, 1, 9, 30), at(2024, 1, 1, 12, 0)) == at(2024, 1, 1, 10, 0)
    assert schedule.due(at(2024, 1, 1, 10, 0), at(2024, 1, 1, 10, 59)) is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute 60 is outside 0-59"),
        ("* * 0 * *", "day of month 0 is outside 1-31"),
        ("* * * 13 *", "month 13 is outside 1-12"),
        ("* * * * 8", "day of week 8 is outside 0-7"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("* * * * funday", "day of week 'funday' is not a number or a name"),
        ("1,,2 * * * *", "empty list item"),
    ],
)
def test_bad_cron_names_its_field(expression, message):
    with pytest.raises(InputError, match=message):
        CronSchedule.parse(expression)
    with pytest.raises(InputError, match="time zone 'Mars/Olympus' is unknown"):
        CronSchedule.parse("* * * * *", "Mars/Olympus")


# --- declarations ----------------------------------------------------------------------------


def test_a_new_project_gets_the_default_loop_and_reads_it_back(tmp_path):
    project = Project.init(tmp_path / "p", classes=["a", "b"])
    loop = Project.open(tmp_path / "p").config.scenarios["loop"]
    assert loop.trigger.type == "every-n-labels" and loop.trigger.params()["every_n_labels"] == 50
    assert [s.type for s in loop.steps] == [
        "train-model",
        "query-sampler",
        "monitoring",
        "stopping-check",
    ]
    assert [s.params.get("recipe") for s in loop.steps] == ["train", "query", "monitor", None]
    # Without its recipes the loop cannot run, and says how to declare them.
    problems = scenario_problems(project, "loop")
    assert len(problems) == 4 and "scenario setup" in problems[0]


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ('{ type = "cron", cron = "61 * * * *" }', r"scenarios\.s\.trigger: .*minute 61"),
        ('{ type = "every-n-labels", every_n_labels = 0 }', "every_n_labels: Input should be"),
        ('{ type = "hourly" }', "unknown trigger type 'hourly'"),
        ('{ type = "manual", cron = "* * * * *" }', "cron: Extra inputs are not permitted"),
    ],
)
def test_a_bad_trigger_in_project_toml_names_the_scenario_and_field(tmp_path, trigger, message):
    project = Project.init(tmp_path / "p")
    text = project.config_path.read_text()
    text += f'\n[scenarios.s]\ntrigger = {trigger}\nsteps = [{{ type = "export" }}]\n'
    project.config_path.write_text(text)
    with pytest.raises(InputError, match=message):
        Project.open(tmp_path / "p")


@pytest.mark.parametrize(
    ("kind", "models", "load"),
    [("steps", STEP_PARAMS, step_descriptor), ("triggers", TRIGGER_PARAMS, trigger_descriptor)],
)
def test_step_and_trigger_descriptors_agree_with_their_params_models(kind, models, load):
    assert set(component_types(kind)) == set(models)
    for name, model in models.items():
        descriptor = load(name)
        assert [p.name for p in descriptor.params] == list(model.model_fields), name
        for param in descriptor.params:
            field = model.model_fields[param.name]
            if field.is_required():
                assert param.mandatory, (name, param.name)
            else:
                assert param.defaultValue == field.get_default(call_default_factory=True), (
                    name,
                    param.name,
                )
            if param.type == "SELECT":
                assert [c.value for c in param.selectChoices] == list(field.annotation.__args__)


# --- running ---------------------------------------------------------------------------------


@pytest.fixture
def ready(tmp_path):
    """A blobs project with 30 labels and the default recipes declared (queue of 20)."""
    project, oracle = make_blobs_project(tmp_path / "p", n=200, n_holdout=40)
    declare_default_recipes(project, "pool", holdout="holdout")
    project.config.recipes["query"].params = {"queue_size": 20}
    project.config.recipes["train"].params = {"cv_folds": 2}
    project.save()
    with project.connect() as con:
        label(con, oracle, list(oracle)[:30])
    return project, oracle


def test_setup_after_the_readme_recipes_takes_their_model_and_queue(tmp_path, capsys):
    # The README declares 'train' and 'query' by hand (model 'classifier', queue 'to-label')
    # before `scenario setup`: the monitor recipe must read that model, not a 'model'.
    project, oracle = make_blobs_project(tmp_path / "p", n=120)
    with project.connect() as con:
        label(con, oracle, list(oracle)[:20])
    root = str(project.root)
    for args in (
        [
            "train-model",
            "train",
            "--input",
            "dataset=pool",
            "--input",
            "labels=labels",
            "--output",
            "model=classifier",
        ],
        [
            "query-sampler",
            "query",
            "--input",
            "pool=pool",
            "--input",
            "model=classifier",
            "--output",
            "queue=to-label",
            "--param",
            "queue_size=10",
        ],
    ):
        assert main(["recipe", "add", root, *args]) == 0
    assert main(["scenario", "setup", root]) == 0
    assert "declared recipe(s) monitor" in capsys.readouterr().out
    monitor = Project.open(project.root).config.recipes["monitor"]
    assert monitor.inputs["model"] == ["classifier"]
    assert main(["scenario", "run", root, "loop"]) == 0
    with project.connect(read_only=True) as con:
        assert latest_advice(con, "classifier") is not None


def _add_scenario(project: Project, name: str, steps: list[dict], **trigger) -> None:
    project.config.scenarios[name] = ScenarioEntry(
        trigger=TriggerEntry(**(trigger or {"type": "manual"})),
        steps=[StepEntry(**step) for step in steps],
    )
    project.save()


def test_a_run_is_logged_with_each_step_and_what_it_made(ready):
    project, _ = ready
    generations = []
    runner = ScenarioRunner(project, project.connect, on_generation=lambda: generations.append(1))
    record = runner.run("loop")
    assert record.status == "succeeded" and record.error is None
    assert [s["status"] for s in record.steps] == ["succeeded"] * 4
    assert record.steps[0]["result"]["version"] == "1"
    assert record.steps[1]["result"]["generation_id"] == 1
    assert record.steps[3]["result"]["advice"] in ("continue", "check", "stop")
    assert generations == [1]  # one step wrote a queue generation
    with project.connect(read_only=True) as con:
        runs = list_runs(con)
    assert runs["status"].tolist() == ["succeeded"] and runs["trigger"].tolist() == ["manual"]
    assert runs["duration_s"].item() > 0
    assert runs["steps"].item()[2]["result"]["model_version"] == "1"


def test_a_failing_step_fails_the_run_and_skips_the_rest(ready):
    project, _ = ready
    project.config.recipes["train"].params = {"classifier": "logistic_regression", "cv_folds": 2}
    project.config.recipes["train"].params["feature_columns"] = ["no_such_column"]
    project.save()
    record = ScenarioRunner(project, project.connect).run("loop")
    assert record.status == "failed"
    assert "step 0 (train-model)" in record.error and "no_such_column" in record.error
    assert [s["status"] for s in record.steps] == ["failed", "skipped", "skipped", "skipped"]
    with pytest.raises(InputError, match="no scenario 'nope'"):
        ScenarioRunner(project, project.connect).run("nope")


def test_a_scenario_that_cannot_run_is_logged_failed_and_never_due(ready):
    project, _ = ready
    _add_scenario(project, "broken", [{"type": "train-model", "params": {"recipe": "absent"}}])
    project.config.scenarios["broken"].trigger = TriggerEntry(
        type="every-n-labels", every_n_labels=1
    )
    project.save()
    runner = ScenarioRunner(project, project.connect)
    assert "broken" not in runner.due()
    record = runner.run("broken")
    assert record.status == "failed" and "no recipe 'absent'" in record.error
    assert record.steps == [{"step": 0, "type": "train-model", "status": "skipped"}]


def test_one_scenario_never_runs_twice_at_once(ready):
    project, _ = ready
    inside, release = threading.Event(), threading.Event()

    def hold():  # called by the run after its query step: the run is in progress here
        inside.set()
        release.wait(30)

    runner = ScenarioRunner(project, project.connect, on_generation=hold)
    first = {}
    worker = threading.Thread(target=lambda: first.update(record=runner.run("loop")))
    worker.start()
    try:
        assert inside.wait(60)
        second = ScenarioRunner(project, project.connect).run("loop", trigger="manual")
        assert second.status == "skipped" and "still running" in second.error
        assert "loop" not in runner.due()
    finally:
        release.set()
        worker.join(60)
    assert first["record"].status == "succeeded"
    with project.connect(read_only=True) as con:
        statuses = list_runs(con)["status"].tolist()
    assert sorted(statuses) == ["skipped", "succeeded"]


def test_a_run_left_running_by_a_dead_process_is_marked_failed(ready):
    project, _ = ready
    with project.connect() as con:
        con.execute(
            "INSERT INTO scenario_runs (run_id, scenario, trigger, status, started_at, "
            "label_events_seen) VALUES (nextval('scenario_run_ids'), 'loop', 'manual', "
            "'running', now(), 0)"
        )
    ScenarioRunner(project, project.connect).due()
    with project.connect(read_only=True) as con:
        runs = list_runs(con)
    assert runs["status"].tolist() == ["failed"]
    assert "interrupted" in runs["error"].item()


def test_every_n_labels_counts_since_the_last_success_and_waits_after_a_failure(ready):
    project, oracle = ready
    ids = list(oracle)
    project.config.scenarios["loop"].trigger = TriggerEntry(
        type="every-n-labels", every_n_labels=20
    )
    project.save()
    runner = ScenarioRunner(project, project.connect, retry_seconds=3600)
    assert runner.due() == ["loop"]  # 30 labels, never run
    assert runner.run("loop", "every-n-labels").status == "succeeded"
    assert runner.due() == []
    with project.connect() as con:
        label(con, oracle, ids[30:49])
    assert runner.due() == []  # 19 new labels
    with project.connect() as con:
        label(con, oracle, ids[49:50])
    assert runner.due() == ["loop"]
    # A failed run: the trigger waits for the retry delay, then fires again.
    project.config.recipes["train"].params["feature_columns"] = ["no_such_column"]
    project.save()
    assert runner.run("loop").status == "failed"
    assert runner.due() == []
    later = datetime.now(UTC) + timedelta(hours=2)
    assert runner.due(later) == ["loop"]


def test_cron_fires_once_a_scheduled_minute_passed_since_the_last_run(ready):
    project, _ = ready
    _add_scenario(
        project,
        "nightly",
        [{"type": "export", "params": {"what": "labels", "dataset": "pool"}}],
        type="cron",
        cron="0 2 * * *",
    )
    runner = ScenarioRunner(project, project.connect)
    now = datetime.now(UTC)
    assert "nightly" not in runner.due(now)  # no 02:00 since the runner started
    runner.started_at = now - timedelta(days=2)  # as if it had been up for two days
    assert "nightly" in runner.due(now)
    record = runner.run("nightly", "cron")
    assert record.status == "succeeded", record.error
    assert (project.exports_dir / "labels.parquet").is_file()
    assert "nightly" not in runner.due(now + timedelta(minutes=1))  # ran after that 02:00
    assert "nightly" in runner.due((now + timedelta(days=1)).replace(hour=3, minute=0))


def test_the_stopping_check_ends_the_scenario_when_told(ready):
    project, _ = ready
    _add_scenario(
        project,
        "checked",
        [
            {"type": "train-model"},
            {"type": "monitoring"},
            {"type": "stopping-check", "params": {"halt_on": ["continue", "check", "stop"]}},
            {"type": "export", "params": {"what": "metrics", "file": "m.csv"}},
        ],
    )
    record = ScenarioRunner(project, project.connect).run("checked")
    assert record.status == "succeeded"
    assert [s["status"] for s in record.steps] == ["succeeded"] * 3 + ["skipped"]
    assert record.steps[2]["halted"].startswith("the stopping advice is")
    assert record.steps[2]["messages"][0].startswith("stopping advice at 30 labels")
    assert not (project.exports_dir / "m.csv").exists()


def test_export_refuses_a_path_outside_exports(ready):
    project, _ = ready
    _add_scenario(project, "out", [{"type": "export", "params": {"file": "../../etc/x.csv"}}])
    record = ScenarioRunner(project, project.connect).run("out")
    assert record.status == "failed" and "inside exports/" in record.error


def test_the_scheduler_thread_runs_due_and_requested_scenarios_and_survives_errors(ready):
    project, _ = ready
    _add_scenario(project, "fails", [{"type": "export", "params": {"file": "x.txt"}}])
    runner = ScenarioRunner(project, project.connect)
    scheduler = Scheduler(runner, poll_seconds=0.05)
    scheduler.request("fails")
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while scheduler.runs < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler.alive and scheduler.runs >= 1
        assert "must end in .parquet or .csv" in scheduler.last_error
    finally:
        scheduler.stop()
    assert not scheduler.alive
    with project.connect(read_only=True) as con:
        runs = list_runs(con)
    assert runs.loc[runs["scenario"] == "fails", "status"].tolist() == ["failed"]
    with pytest.raises(InputError, match="no scenario 'nope'"):
        scheduler.request("nope")
    with pytest.raises(InputError, match="poll_seconds"):
        Scheduler(runner, poll_seconds=0)


# --- the command line ------------------------------------------------------------------------


def test_the_scenario_commands(ready, capsys):
    project, _ = ready
    root = str(project.root)
    assert main(["scenario", "list", root]) == 0
    out = capsys.readouterr().out
    assert "loop\tevery 50 new labels\ttrain-model > query-sampler" in out and "never run" in out
    assert main(["scenario", "run", root, "loop", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "scenario 'loop', run 1: succeeded" in out
    assert main(["scenario", "runs", root, "--steps"]) == 0
    out = capsys.readouterr().out
    assert "1\tloop\tsucceeded" in out and "step 1 query-sampler: succeeded" in out
    assert main(["monitor", root]) == 0
    out = capsys.readouterr().out
    assert "holdout_accuracy" in out and "stopping advice at 30 labels" in out
    assert "advice 'cautious'" in out and "[wait, decides] max-confidence" in out
    assert main(["scenario", "run", root, "nope"]) == 1
    assert "no scenario 'nope'" in capsys.readouterr().err


def test_scenario_setup_declares_the_default_recipes(tmp_path, capsys):
    project, _ = make_blobs_project(tmp_path / "p", n=20)
    assert main(["scenario", "setup", str(project.root)]) == 0
    assert "declared recipe(s) train, query, monitor" in capsys.readouterr().out
    reopened = Project.open(project.root)
    assert scenario_problems(reopened, "loop") == []
    assert reopened.config.recipes["monitor"].inputs["pool"] == ["pool"]
    assert main(["scenario", "setup", str(project.root)]) == 0
    assert "declared already" in capsys.readouterr().out


# --- the whole loop --------------------------------------------------------------------------


def test_simulated_labelers_run_the_loop_until_the_advice_says_stop(tmp_path):
    """Two labelers (an oracle) label through the HTTP API while the scheduler thread
    retrains, requeues and monitors every 25 labels; the advice turns to stop well before
    the pool runs out, and the app hands out each new queue generation."""
    n_pool, every = 400, 25
    project, oracle = make_blobs_project(tmp_path / "p", n=n_pool, n_holdout=100)
    declare_default_recipes(project, "pool", holdout="holdout")
    project.config.scenarios["loop"].trigger = TriggerEntry(
        type="every-n-labels", every_n_labels=every
    )
    project.config.recipes["query"].params = {"queue_size": every}
    project.config.recipes["train"].params = {"cv_folds": 3}
    project.save()
    with project.connect() as con:
        passwords = {name: add_user(con, name, "labeler") for name in ("ann", "bob")}

    app = create_app(project.root, dataset="pool", queue="queue")
    service = app.state.service
    runner = ScenarioRunner(project, service.cursor_for_command)
    scheduler = Scheduler(runner, poll_seconds=0.05, on_generation=service.refresh)
    clients = {}
    for name, password in passwords.items():
        client = TestClient(app)
        response = client.post("/api/login", json={"username": name, "password": password})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        clients[name] = client

    def finished_runs() -> int:
        with service.lock:
            return service.con.execute(
                "SELECT count(*) FROM scenario_runs WHERE status <> 'running'"
            ).fetchall()[0][0]

    labeled, generations_seen, advice = 0, set(), None
    scheduler.start()
    try:
        while labeled < n_pool - every:
            runs_before = finished_runs()
            for _ in range(every):  # the two labelers take turns, one item each
                client = clients["ann" if labeled % 2 else "bob"]
                items = client.get("/api/items/next?count=1&hint=false").json()["items"]
                item = items[0]
                generations_seen.add(item.get("generation_id"))
                response = client.post(
                    f"/api/items/{item['item_id']}/label",
                    json={"label": oracle[item["item_id"]], "lead_time_ms": 2_000},
                )
                assert response.status_code == 200, response.text
                labeled += 1
            deadline = time.monotonic() + 60  # the labelers pause while the loop catches up
            while finished_runs() == runs_before and time.monotonic() < deadline:
                time.sleep(0.02)
            with service.lock:
                advice = latest_advice(service.con)
            if advice and advice["advice"] == "stop":
                break
    finally:
        scheduler.stop()
        service.close()

    assert scheduler.last_error is None
    assert advice is not None and advice["advice"] == "stop", advice
    assert labeled < n_pool / 2  # stopped well before the pool ran out
    project = Project.open(project.root)
    versions = list_models(project.models_dir)["model"]
    with project.connect(read_only=True) as con:
        runs = list_runs(con, limit=100)
        history = metric_history(con, "model")
    assert len(versions) == len(runs) >= 4
    assert set(runs["status"]) == {"succeeded"}
    assert all(t.startswith("every-n-labels") for t in runs["trigger"])
    # One version per run, each trained on at least `every` more labels than the last.
    n_labels = history.groupby("model_version")["n_labels"].first()
    steps = [n_labels[v] for v in versions]
    assert all(b - a >= every for a, b in itertools.pairwise(steps))
    assert {"holdout_accuracy", "contradiction_ratio", "exploration_distance"} <= set(
        history["metric"]
    )
    # The app took up the new queue generations without a restart.
    assert len({g for g in generations_seen if g is not None}) >= len(versions) - 1
