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


def test_the_multilabel_walkthrough_of_the_flow_guide_runs(tmp_path, monkeypatch, capsys):
    """Every command of the walkthrough block in docs/flow.md, in order, in a fresh folder:
    from the CSV to the second queue generation and its stopping advice."""
    import re
    import shlex

    from active_labeling.cli import main

    guide = (EXAMPLES.parent / "docs" / "flow.md").read_text(encoding="utf-8")
    marker = guide.index("<!-- multi-label walkthrough")
    block = re.search(r"```bash\n(.*?)```", guide[marker:], re.S).group(1)
    commands = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    data = _load("multilabel_data")
    monkeypatch.chdir(tmp_path)
    outputs = []
    for command in commands:
        words = shlex.split(command)
        if words[:2] == ["python", "examples/multilabel_data.py"]:
            assert data.main(words[2:]) == 0, command
        else:
            assert words[0] == "active-labeling", command
            assert main(words[1:]) == 0, command
        outputs.append(capsys.readouterr().out)
    everything = "\n".join(outputs)
    assert "queue 'queue': generation 2, 100 items ranked by wkmeans" in everything
    assert "multi-label one_vs_rest logistic_regression on 140 labels" in everything
    assert "queue 'queue', generation 2 (dataset 'pool'), top 3:" in outputs[-2]
    monitor = outputs[-1]
    assert "stopping advice at 140 labels (model 'model' v2, advice 'cautious')" in monitor
    assert "the most uncertain unlabeled row has uncertainty" in monitor
