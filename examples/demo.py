"""Demo: from a CSV to a ranked labeling queue, with the real commands.

Uses the Palmer penguins data (shipped inside the ``palmerpenguins`` package: no download):
344 penguins, their island, bill, flipper, mass and sex, and a species to label. The demo
makes a project, imports the table, seeds 9 labels (3 per species, as a labeler would),
trains a model, ranks the unlabeled penguins by margin, and prints the top of the queue.

Run it with ``make demo``: it ends by serving the labeling app on http://127.0.0.1:8000/
(Ctrl-C stops it). It prints every command, so you can replay them by hand.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import shutil
import sys
from importlib.resources import files
from pathlib import Path

from active_labeling.cli import main as cli

FEATURES = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex"


def run(*args: str) -> None:
    print(f"\n$ active-labeling {shlex.join(args)}", flush=True)
    status = cli(list(args))
    if status:
        sys.exit(status)


def seed_labels(source: Path, target: Path, per_class: int = 3) -> Path:
    """The first ``per_class`` penguins of each species, labeled (ids are row positions)."""
    chosen: dict[str, list[int]] = {}
    with open(source, newline="") as handle:
        for position, row in enumerate(csv.DictReader(handle), start=1):
            picks = chosen.setdefault(row["species"], [])
            if len(picks) < per_class and row["bill_length_mm"] != "NA":
                picks.append(position)
    with open(target, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label"])
        for species, positions in chosen.items():
            writer.writerows([position, species] for position in positions)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=".demo/penguins", help="where to make the project")
    parser.add_argument("--strategy", default="margin", help="query strategy of the queue")
    parser.add_argument(
        "--serve", action="store_true", help="end by serving the labeling app (Ctrl-C stops)"
    )
    parser.add_argument("--port", default="8000", help="port of the labeling app")
    args = parser.parse_args(argv)

    project = Path(args.project)
    if project.exists():
        shutil.rmtree(project)  # a fresh demo every time
    project.parent.mkdir(parents=True, exist_ok=True)
    data = Path(str(files("palmerpenguins") / "data" / "penguins.csv"))
    labels = seed_labels(data, project.parent / "penguin-seed-labels.csv")

    run("init", str(project), "--classes", "Adelie,Chinstrap,Gentoo", "--feature-columns", FEATURES)
    run("dataset", "import", str(project), "penguins", str(data))
    run("dataset", "show", str(project), "penguins", "--rows", "3")
    run("labels", "import", str(project), str(labels))
    run(
        "recipe", "add", str(project), "train-model", "train",
        "--input", "dataset=penguins", "--input", "labels=labels", "--output", "model=species",
        "--param", "cv_folds=3",
    )  # fmt: skip
    run(
        "recipe", "add", str(project), "query-sampler", "query",
        "--input", "pool=penguins", "--input", "model=species", "--output", "queue=to-label",
        "--param", f"strategy={args.strategy}", "--param", "queue_size=20",
    )  # fmt: skip
    # The monitoring recipe and the default scenario (every 50 new labels: train, query,
    # monitor, check stopping), which `serve` runs by itself.
    run(
        "scenario", "setup", str(project), "--dataset", "penguins",
        "--model", "species", "--queue", "to-label",
    )  # fmt: skip
    run("scenario", "run", str(project), "loop", "--quiet")
    run("queue", "show", str(project), "--queue", "to-label", "--top", "8")
    run("monitor", str(project))
    if args.serve:
        run("user", "add", str(project), "demo", "--role", "admin")
        print(
            f"\nOpen http://127.0.0.1:{args.port}/ and log in as 'demo' with the password above."
            "\nKeys: 1-3 label, S skip, Left arrow back, Z undo, H hint. Every 50 labels the"
            "\nmodel is retrained and the queue renewed by itself; the Dashboard link shows the"
            "\nmetrics and the stopping advice. Ctrl-C stops the app."
        )
        run("serve", str(project), "--port", args.port)
        return 0
    print(
        "\nThe queue holds the 20 penguins the model is least sure about (the species column is\n"
        "shown only because this data set comes labeled; the model never sees it). Label some,\n"
        "then retrain and requeue:\n"
        f"  active-labeling labels import {project} my-labels.csv\n"
        f"  active-labeling scenario run {project} loop      # train, query, monitor, advice\n"
        f"  active-labeling monitor {project}\n"
        f"Project files: {project}/project.toml, {project}/store.duckdb, {project}/models/"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
