"""The ``active-labeling experiment`` commands: run, resume, replay, report, advice.

``register`` adds them to the main command's subparsers; each handler returns the exit
status and lets ``ActiveLabelingError`` reach the main command, which prints it as one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_run(args) -> int:
    from active_labeling.experiment.runner import create_experiment

    out = Path(args.out) if args.out else Path(f"experiment-{Path(args.config).stem}")
    experiment = create_experiment(args.config, out)
    runs = len(experiment.run_keys())
    print(
        f"experiment {experiment.config.title!r} in {out}: {runs} runs of "
        f"{experiment.n_iterations} iterations"
    )
    return _run(out, args)


def cmd_resume(args) -> int:
    return _run(Path(args.dir), args)


def _run(root: Path, args) -> int:
    from active_labeling.experiment.runner import run_experiment

    summary = run_experiment(root, n_jobs=args.jobs, progress=not args.quiet)
    print(
        f"{summary.ran} of {summary.runs} runs needed work ({summary.iterations} iterations "
        f"run); log in {summary.log}"
    )
    print(f"next: active-labeling experiment report {root}")
    return 0


def cmd_replay(args) -> int:
    from active_labeling.experiment.runner import replay_experiment

    frame = replay_experiment(
        args.dir, args.metric or None, n_jobs=args.jobs, progress=not args.quiet
    )
    if frame.empty:
        print("no iteration cached yet: nothing to replay")
        return 0
    print(f"replayed {frame['iteration'].size} values into {Path(args.dir) / 'replay.csv'}")
    mismatches = 0
    for metric, rows in frame.groupby("metric", sort=False):
        logged = rows["logged"].astype(float)
        replayed = rows["replayed"].astype(float)
        if logged.isna().all():
            print(f"  {metric}: mean {replayed.mean():.4f} (not logged: computed afresh)")
            continue
        same = (logged == replayed) | (logged.isna() & replayed.isna())
        mismatches += int((~same).sum())
        worst = float((logged - replayed).abs().max())
        print(
            f"  {metric}: {int(same.sum())} of {len(rows)} values equal to the log "
            f"(largest difference {worst:.3g})"
        )
    return 1 if mismatches else 0


def cmd_report(args) -> int:
    from active_labeling.experiment.report import write_report

    path = write_report(args.dir, baseline=args.baseline)
    print(f"wrote {path}")
    return 0


def cmd_advice(args) -> int:
    from active_labeling.experiment.advice import write_advice_report

    path, summary = write_advice_report(args.dirs, args.out)
    overall = summary[summary["dataset"] == "all"]
    print(f"{'holdout':<10} {'policy':<24} {'stopped':>8} {'saved':>7} {'premature>1pt':>14}")
    for _, row in overall.iterrows():
        print(
            f"{row['variant']:<10} {row['policy']:<24} {100 * row['stopped']:>7.0f}% "
            f"{100 * row['saving']:>6.0f}% {100 * row['premature_1']:>13.1f}%"
        )
    if len(overall):
        print(
            f"hindsight (first iteration within 1 point of the end) saves "
            f"{100 * overall['hindsight_saving'].iloc[0]:.0f}%"
        )
    print(f"wrote {path}")
    return 0


def register(commands) -> None:
    """Add the ``experiment`` command group to the main command's subparsers."""
    experiment = commands.add_parser(
        "experiment",
        help="simulate active learning on labeled data to compare strategies",
        description="Simulate the labeling loop with an oracle, over seeds, and report.",
    )
    sub = experiment.add_subparsers(dest="experiment_command", required=True)

    def command(name, handler, help_text) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(handler=handler)
        return parser

    def jobs_and_quiet(parser) -> None:
        parser.add_argument("--jobs", type=int, help="worker processes (default: one per core)")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    run = command("run", cmd_run, "start an experiment from a config file and run it")
    run.add_argument("config", help="the experiment's TOML file")
    run.add_argument("--out", help="the experiment folder (default: experiment-<config name>)")
    jobs_and_quiet(run)

    resume = command("resume", cmd_resume, "finish the runs of a stopped experiment")
    resume.add_argument("dir", help="the experiment folder")
    jobs_and_quiet(resume)

    replay = command(
        "replay", cmd_replay, "recompute metrics from the cached selections (no query)"
    )
    replay.add_argument("dir", help="the experiment folder")
    replay.add_argument(
        "--metric",
        action="append",
        help="a metric to recompute (repeatable; default: every logged one)",
    )
    jobs_and_quiet(replay)

    advice = command(
        "advice",
        cmd_advice,
        "replay the stopping rules and the advice over the logged runs, against the truth",
    )
    advice.add_argument("dirs", nargs="+", metavar="dir", help="experiment folders")
    advice.add_argument("--out", help="where to write (default: DIR/report of the first)")

    report = command("report", cmd_report, "write report/index.html and plots")
    report.add_argument("dir", help="the experiment folder")
    report.add_argument(
        "--baseline",
        default="random",
        help="the strategy others are compared with (default: %(default)s)",
    )
