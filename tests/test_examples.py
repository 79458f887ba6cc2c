"""The examples the README sends people to still run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_goes_from_csv_to_queue(tmp_path, capsys):
    demo = _load("demo")
    assert demo.main(["--project", str(tmp_path / "penguins")]) == 0
    out = capsys.readouterr().out
    assert "dataset 'penguins' imported: 344 rows" in out
    assert "imported 9 labels" in out
    assert "20 items ranked by margin among 335 unlabeled" in out
    assert (tmp_path / "penguins" / "exports" / "queues" / "to-label").is_dir()


def test_learning_curves_example_runs_small(capsys):
    curves = _load("learning_curves")
    args = ["--strategies", "random", "margin", "--seeds", "1", "--rounds", "2", "--batch", "10"]
    assert curves.main(args) == 0
    out = capsys.readouterr().out
    assert "Normalized area under the accuracy curve" in out and "margin" in out
