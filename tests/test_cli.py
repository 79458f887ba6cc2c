"""The command line: every command has --help; errors are one line; a CSV becomes a queue."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from active_labeling.cli import build_parser, main

from flow_helpers import declare_train_and_query, make_project, write_labels_csv, write_pool_csv


def _subcommand_paths(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommand_paths(sub, (*prefix, name))


COMMANDS = list(_subcommand_paths(build_parser()))


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: active-labeling" in capsys.readouterr().out


def test_a_newcomer_goes_from_a_csv_to_a_ranked_queue(tmp_path, capsys):
    project = str(tmp_path / "proj")
    pool = write_pool_csv(tmp_path / "pool.csv", 200)
    ids = [f"I{i}" for i in range(0, 200, 10)]
    labels = write_labels_csv(tmp_path / "labels.csv", ids, ["yes", "no"] * 10)
    steps = [
        ["init", project, "--classes", "yes,no", "--id-column", "id"],
        ["dataset", "import", project, "pool", str(pool)],
        ["dataset", "list", project],
        ["dataset", "show", project, "pool"],
        ["labels", "import", project, str(labels)],
        [
            "recipe",
            "add",
            project,
            "train-model",
            "train",
            "--input",
            "dataset=pool",
            "--input",
            "labels=labels",
            "--output",
            "model=clf",
        ],
        [
            "recipe",
            "add",
            project,
            "query-sampler",
            "query",
            "--input",
            "pool=pool",
            "--input",
            "model=clf",
            "--output",
            "queue=queue",
            "--param",
            "queue_size=12",
            "--param",
            "strategy=wkmeans",
            "--param",
            'strategy_params={"beta": 5}',
        ],
        ["recipe", "list", project],
        ["run", project, "train", "--quiet"],
        ["run", project, "query", "--quiet"],
        ["models", "list", project],
        ["queue", "show", project, "--top", "3"],
        ["labels", "export", project, str(tmp_path / "labels-out.parquet")],
        ["dataset", "export", project, "pool", str(tmp_path / "pool-out.csv")],
        ["strategies"],
    ]
    for step in steps:
        assert main(step) == 0, step
    out = capsys.readouterr().out
    assert "dataset 'pool' imported: 200 rows" in out
    assert "imported 20 labels" in out
    assert "12 items ranked by wkmeans among 180 unlabeled" in out
    assert "clf\tversions 1" in out
    assert "queue 'queue', generation 1 (dataset 'pool'), top 3:" in out
    assert (tmp_path / "labels-out.parquet").is_file() and (tmp_path / "pool-out.csv").is_file()


def test_errors_are_one_line_with_status_one(tmp_path, capsys):
    assert main(["dataset", "list", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path):
    from active_labeling.errors import InputError

    with pytest.raises(InputError):
        main(["--debug", "dataset", "list", str(tmp_path / "nowhere")])


def test_the_installed_command_runs(tmp_path):
    script = Path(sys.executable).with_name("active-labeling")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "active_labeling.cli"]
    result = subprocess.run(
        [*command, "init", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    bad = subprocess.run(
        [*command, "init", str(tmp_path / "p")], capture_output=True, text=True, timeout=120
    )
    assert (
        bad.returncode == 1 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    )


def test_the_store_and_the_files_a_command_writes_are_private_to_their_owner(tmp_path, capsys):
    import stat

    previous = os.umask(0o022)
    try:
        project = tmp_path / "proj"
        assert main(["init", str(project)]) == 0
        assert main(["user", "add", str(project), "ann", "--role", "admin"]) == 0
        for name in ("store.duckdb", "project.toml"):
            assert stat.S_IMODE((project / name).stat().st_mode) == 0o600, name
        assert stat.S_IMODE(project.stat().st_mode) == 0o700
        assert os.umask(0o022) == 0o022  # main gave the umask back
    finally:
        os.umask(previous)


def test_queue_show_picks_the_only_queue_and_names_the_queues_otherwise(tmp_path, capsys):
    from active_labeling.store import queue

    project = make_project(tmp_path / "proj", n=60, n_labels=10)
    root = str(project.root)
    assert main(["queue", "show", root]) == 1
    assert "error: no queue yet: add a query-sampler recipe" in capsys.readouterr().err
    declare_train_and_query(project, queue_size=5)
    assert main(["queue", "show", root]) == 1
    assert "queue 'queue' has no generation yet: run its recipe (`active-labeling run" in (
        capsys.readouterr().err
    )
    assert main(["run", root, "train", "--quiet"]) == main(["run", root, "query", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["queue", "show", root, "--top", "2"]) == 0  # the only queue
    assert "queue 'queue', generation 1 (dataset 'pool'), top 2:" in capsys.readouterr().out
    assert main(["queue", "show", root, "--queue", "nope"]) == 1
    assert "no queue 'nope' in this project (queues: queue)" in capsys.readouterr().err
    with project.connect() as con:
        queue.write_generation(
            con,
            queue="review",
            dataset="pool",
            item_ids=["I1"],
            scores=None,
            strategy="random",
            model_name=None,
            model_version=None,
            params={},
            pool_rows=60,
        )
    assert main(["queue", "show", root]) == 1
    assert "several queues (queue, review): pick one with --queue" in capsys.readouterr().err
    assert main(["queue", "show", root, "--queue", "review"]) == 0


def test_dataset_import_over_an_existing_name_needs_replace_and_keeps_its_id_column(
    tmp_path, capsys
):
    project = str(tmp_path / "proj")
    first = write_pool_csv(tmp_path / "first.csv", 100)
    assert main(["init", project, "--classes", "yes,no"]) == 0
    assert main(["dataset", "import", project, "pool", str(first), "--id-column", "id"]) == 0
    labels = write_labels_csv(tmp_path / "l.csv", ["I5", "I50", "I90"], ["yes", "no", "yes"])
    assert main(["labels", "import", project, str(labels)]) == 0
    smaller = tmp_path / "smaller.csv"
    smaller.write_text("".join(first.read_text().splitlines(keepends=True)[:61]))  # I0..I59
    capsys.readouterr()
    assert main(["dataset", "import", project, "pool", str(smaller)]) == 1
    err = capsys.readouterr().err
    assert "error: dataset 'pool' exists already (100 rows): pass --replace" in err
    assert main(["dataset", "import", project, "pool", str(smaller), "--replace"]) == 0
    out, err = capsys.readouterr()
    # The ids still come from 'id', as when the dataset was first imported.
    assert "dataset 'pool' replaced (copied): 60 rows (was 100), 4 columns, ids from 'id'" in out
    assert "warning: 1 of the 3 labeled items of dataset 'pool' are not in it any more" in err
    assert "hold other values" not in err and "row positions" not in err
