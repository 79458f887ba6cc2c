"""The ``active-labeling scenario`` commands and ``active-labeling monitor``.

``register`` adds them to the main command's subparsers; each handler returns the exit
status and lets ``ActiveLabelingError`` reach the main command, which prints it as one line.
"""

from __future__ import annotations

import math

#: The metrics ``monitor`` shows by default, in this order (those measured).
SHOWN_METRICS = (
    "holdout_accuracy",
    "cv_accuracy",
    # Multi-label models: their accuracy above is the subset accuracy.
    "holdout_micro_f1",
    "cv_micro_f1",
    "contradiction_ratio",
    "stop_set_kappa",
    "max_uncertainty",
    "mean_confidence",
    "exploration_distance",
    "exploration_gain",
    "batch_agreement",
    "batch_easiness",
    "uncertainty_variance",
    "labeler_kappa",
    "median_lead_time_s",
)


def _project(args):
    from active_labeling.flow.project import Project

    return Project.open(args.project)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def cmd_list(args) -> int:
    from active_labeling.flow.scenarios import list_runs, scenario_problems

    project = _project(args)
    if not project.config.scenarios:
        print("no scenario yet")
        return 0
    with project.connect(read_only=True) as con:
        runs = list_runs(con, limit=1_000)
    for name, entry in project.config.scenarios.items():
        steps = " > ".join(step.type for step in entry.steps)
        last = runs[runs["scenario"] == name].head(1)
        if last.empty:
            state = "never run"
        else:
            row = last.iloc[0]
            state = f"last run {row['run_id']} {row['status']} at {_when(row['started_at'])}"
        print(f"{name}\t{entry.trigger.describe()}\t{steps}\t{state}")
        for problem in scenario_problems(project, name):
            print(f"  not ready: {problem}")
    return 0


def cmd_run(args) -> int:
    from active_labeling.flow.scenarios import ScenarioRunner

    project = _project(args)
    runner = ScenarioRunner(project, project.connect, progress=not args.quiet, echo=True)
    record = runner.run(args.name, trigger="manual")
    print(
        f"scenario {record.scenario!r}, run {record.run_id}: {record.status} "
        f"in {record.duration_s:.1f} s"
    )
    for step in record.steps:
        extra = step.get("error") or step.get("halted") or ""
        print(f"  step {step['step']} {step['type']}: {step['status']}  {extra}".rstrip())
    if record.error:
        print(f"error: {record.error}")
    return 0 if record.status == "succeeded" else 1


def cmd_runs(args) -> int:
    from active_labeling.flow.scenarios import list_runs

    project = _project(args)
    with project.connect(read_only=True) as con:
        runs = list_runs(con, args.scenario, args.limit)
    if runs.empty:
        print("no scenario run yet")
        return 0
    for row in runs.itertuples(index=False):
        duration = (
            "-"
            if row.duration_s is None or math.isnan(row.duration_s)
            else (f"{row.duration_s:.1f} s")
        )
        print(
            f"{row.run_id}\t{row.scenario}\t{row.status}\t{_when(row.started_at)}\t"
            f"{duration}\t{row.trigger}"
        )
        if row.error:
            print(f"  error: {row.error}")
        if args.steps:
            for step in row.steps:
                result = step.get("result") or {}
                shown = ", ".join(f"{k}={v}" for k, v in result.items() if k != "reasons")
                extra = step.get("error") or step.get("halted") or shown
                print(f"  step {step['step']} {step['type']}: {step['status']}  {extra}".rstrip())
    return 0


def cmd_setup(args) -> int:
    from active_labeling.flow.scenarios import declare_default_recipes

    project = _project(args)
    dataset = args.dataset or project.default_dataset()
    declared = declare_default_recipes(
        project, dataset, holdout=args.holdout, model=args.model, queue=args.queue
    )
    if declared:
        print(f"declared recipe(s) {', '.join(declared)} on dataset {dataset!r}")
    else:
        print("the default recipes were declared already")
    print(f"next: active-labeling scenario run {args.project} loop")
    return 0


def cmd_monitor(args) -> int:
    import pandas as pd

    from active_labeling.flow.label_errors import suspect_outcomes
    from active_labeling.flow.label_quality import review_decisions
    from active_labeling.flow.monitoring import latest_advice, metric_history

    project = _project(args)
    with project.connect(read_only=True) as con:
        history = metric_history(con, args.model, dataset=args.dataset)
        advice = latest_advice(con, args.model, dataset=args.dataset)
        suspects = suspect_outcomes(con, args.dataset)
        decisions = review_decisions(con, args.dataset)
    if history.empty:
        print("no metric yet: run a monitoring recipe (the default scenario's 'monitor')")
        _print_label_quality(history, suspects, decisions)
        return 0
    wanted = [m.strip() for m in args.metrics.split(",")] if args.metrics else SHOWN_METRICS
    for model, rows in history.groupby("model_name", sort=True):
        rows = rows[rows["metric"].isin(wanted)]
        table = rows.pivot_table(
            index=["n_labels", "model_version"], columns="metric", values="value", aggfunc="last"
        )
        table = table[[m for m in wanted if m in table.columns]]
        print(f"model {model!r}:")
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(table.round(4).to_string())
        optimistic = rows["metric"].str.startswith("cv_").any()
        if optimistic:
            print("  (cv_*: cross-validated on the labeled set: optimistic, no holdout bound)")
    if advice:
        preset = f", advice {advice['policy']!r}" if advice.get("policy") else ""
        print(
            f"stopping advice at {advice['n_labels']} labels (model {advice['model_name']!r} "
            f"v{advice['model_version']}{preset}): {advice['advice']}"
        )
        votes = advice.get("votes", [])  # one per reason, in the same order
        for reason, vote in zip(advice["reasons"], votes, strict=False):
            role = "decides" if vote["decides"] else "watches"
            print(f"  - [{vote['vote']}, {role}] {reason}")
        for reason in advice["reasons"][len(votes) :]:
            print(f"  - {reason}")
    _print_label_quality(history, suspects, decisions)
    return 0


def _print_label_quality(history, suspects, decisions) -> None:
    """Per labeler and per pair (newest model version), the likely label errors and what
    reviewers made of them, the decisions so far; nothing when there is none of it."""
    import pandas as pd

    from active_labeling.flow.label_quality import labeler_table, pair_table

    labelers, pairs = labeler_table(history), pair_table(history)
    if not labelers.empty:
        print("labelers (newest model version):")
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(labelers.round(3).to_string(index=False))
    if not pairs.empty:
        print("kappa per pair of labelers:")
        print(pairs.round(3).to_string(index=False))
    if not suspects.empty:
        print("likely label errors (confirmed: corrected by a reviewer; accepted: the label was")
        print("right; open: not reviewed yet):")
        shown = suspects.drop(columns=["dataset"]).assign(
            scored_at=suspects["scored_at"].map(_when)
        )
        print(shown.to_string(index=False))
    if decisions:
        print("review decisions: " + ", ".join(f"{k} {v}" for k, v in decisions.items()))


def register(commands) -> None:
    """Add the ``scenario`` command group and ``monitor`` to the main command's subparsers."""

    def command(parent, name, handler, help_text):
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    scenario = commands.add_parser(
        "scenario", help="scenarios: a trigger and steps (train, query, monitor, check)"
    )
    scenario_commands = scenario.add_subparsers(dest="scenario_command", required=True)
    lst = command(scenario_commands, "list", cmd_list, "the scenarios, their triggers and state")
    lst.add_argument("project")
    run = command(scenario_commands, "run", cmd_run, "run a scenario now (logged in the store)")
    run.add_argument("project")
    run.add_argument("name")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    runs = command(scenario_commands, "runs", cmd_runs, "the log of scenario runs, newest first")
    runs.add_argument("project")
    runs.add_argument("--scenario", help="only this scenario's runs")
    runs.add_argument(
        "--limit", type=int, default=20, help="the latest runs shown (default: %(default)s)"
    )
    runs.add_argument("--steps", action="store_true", help="show each step of each run")
    setup = command(
        scenario_commands,
        "setup",
        cmd_setup,
        "declare the recipes the default scenario runs (train, query, monitor)",
    )
    setup.add_argument("project")
    setup.add_argument("--dataset", help="the dataset to label (default: the only one)")
    setup.add_argument("--holdout", help="a labeled dataset for holdout accuracy")
    setup.add_argument(
        "--model",
        help="the saved model's name (default: what a declared 'train' recipe writes, else model)",
    )
    setup.add_argument(
        "--queue",
        help="the queue's name (default: what a declared 'query' recipe writes, else queue)",
    )

    monitor = command(
        commands, "monitor", cmd_monitor, "the monitoring metrics per model version, and advice"
    )
    monitor.add_argument("project")
    monitor.add_argument("--model", help="only this saved model")
    monitor.add_argument("--dataset", help="only this dataset")
    monitor.add_argument("--metrics", help="comma-separated metric names to show")
