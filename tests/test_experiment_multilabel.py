"""The experiment harness on multi-label data: label sets, set scores, the same guarantees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from active_labeling.errors import InputError
from active_labeling.experiment.advice import run_histories
from active_labeling.experiment.cache import ExperimentDir
from active_labeling.experiment.report import write_report
from active_labeling.experiment.runner import (
    create_experiment,
    experiment_results,
    replay_experiment,
    run_experiment,
)

SMALL = """
name = "multi-label test"
model = { name = "logistic_regression", standardize = true }
strategies = [
    "random", "mean_binary_uncertainty", "mmc", "label_cardinality", "kcenter", "wkmeans",
    "badge", "auto",
]
initial = 12
batch_size = 6
n_rounds = 3
seeds = 2
monitoring = { contradiction_sample = 60, holdout_size = 30 }

[data]
generator = "multilabel"
random_state = 3
params = { n_samples = 300, n_features = 8, n_classes = 4, n_labels = 2 }
"""


def _create(tmp_path: Path, text: str, name: str = "ml") -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(text, encoding="utf-8")
    out = tmp_path / name
    create_experiment(config, out)
    return out


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    out = _create(tmp_path_factory.mktemp("multilabel"), SMALL)
    run_experiment(out, n_jobs=1, progress=False)
    return out


def test_a_multilabel_run_logs_set_scores_and_its_label_sets(experiment):
    measures = ExperimentDir(experiment).measures
    assert measures[:5] == ["n_labeled", "micro_f1", "macro_f1", "hamming_loss", "subset_accuracy"]
    assert "accuracy" not in measures and "contradiction_ratio" in measures
    metrics = pd.read_csv(experiment / "runs" / "mmc" / "seed-1" / "metrics.csv")
    assert metrics["n_labeled"].tolist() == [12, 18, 24, 30]
    assert metrics["micro_f1"].between(0, 1).all() and metrics["hamming_loss"].between(0, 1).all()
    selected = pd.read_csv(experiment / "runs" / "mmc" / "seed-1" / "selected.csv")
    sets = [json.loads(label) for label in selected["label"]]
    assert all(set(s) <= {"class0", "class1", "class2", "class3"} for s in sets)
    # The labels are the generator's: the same rows give the same sets.
    from sklearn.datasets import make_multilabel_classification

    _, Y = make_multilabel_classification(
        n_samples=300, n_features=8, n_classes=4, n_labels=2, random_state=3
    )
    truth = [[f"class{j}" for j in np.flatnonzero(Y[p])] for p in selected["position"]]
    assert sets == truth


def test_the_strategies_of_a_seed_start_from_the_same_rows_and_pick_their_own(experiment):
    results = experiment_results(experiment)
    first = results[results.iteration == 0].groupby("strategy")["micro_f1"].apply(list)
    assert len({tuple(v) for v in first}) == 1  # same initial labels, same model
    chosen = {}
    for strategy in ("random", "mean_binary_uncertainty", "mmc", "kcenter"):
        selected = pd.read_csv(experiment / "runs" / strategy / "seed-0" / "selected.csv")
        chosen[strategy] = tuple(selected.loc[selected.iteration == 1, "position"])
    assert len(set(chosen.values())) == 4


def test_resume_and_replay_give_the_logged_values(experiment, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(experiment, copy)
    metrics = copy / "runs" / "wkmeans" / "seed-0" / "metrics.csv"
    full = metrics.read_bytes()
    frame = pd.read_csv(metrics)
    frame.iloc[:2].to_csv(metrics, index=False)  # as if killed after iteration 1
    run_experiment(copy, n_jobs=1, progress=False)
    assert metrics.read_bytes() == full
    replay = replay_experiment(
        experiment, ["micro_f1", "contradiction_ratio"], n_jobs=1, progress=False
    )
    same = replay.dropna(subset=["logged"])
    np.testing.assert_allclose(same["replayed"], same["logged"], rtol=0, atol=1e-12)


def test_the_report_follows_micro_f1(experiment):
    page = write_report(experiment, n_boot=200).read_text()
    assert "AUC, mean micro F1 (%)" in page and "final Hamming loss" in page
    assert "test micro F1" in page and "multi-label (one_vs_rest, thresholds 0.5)" in page
    comparison = pd.read_csv(experiment / "report" / "comparison.csv")
    assert set(comparison["strategy"]) == {
        "mean_binary_uncertainty",
        "mmc",
        "label_cardinality",
        "kcenter",
        "wkmeans",
        "badge",
        "auto",
    }
    assert comparison["pairs"].eq(2).all()


def test_the_advice_replays_over_multilabel_runs(experiment):
    runs = run_histories(experiment)
    assert len(runs) == 16
    history = runs[0].history
    assert {"contradiction_ratio", "max_uncertainty", "stop_set_kappa"} <= set(history.values)
    assert np.nanmax(history.values["max_uncertainty"]) <= 0.5  # binary least confidence
    # The accuracy the replay judges stops by is the micro-F1 curve.
    results = experiment_results(experiment)
    first = results[(results.strategy == runs[0].strategy) & (results.seed == runs[0].seed)]
    np.testing.assert_array_equal(runs[0].accuracy, first["micro_f1"].to_numpy())


def test_auto_climbs_the_multilabel_ladder(experiment):
    auto = pd.read_csv(experiment / "runs" / "auto" / "seed-0" / "auto.csv")
    assert auto["strategy"].iloc[0] == "mean_binary_uncertainty"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('"mmc"', '"margin"'), r"strategies\.2\.name: 'margin' ranks single-label models"),
        (("initial = 12", 'initial = { size = 12, method = "stratified" }'), r"initial\.method"),
        (('"mmc"', '"informed_confidence"'), r"strategies\.2\.name: 'informed_confidence'"),
    ],
)
def test_what_does_not_fit_multilabel_data_is_refused_in_one_line(change, message, tmp_path):
    with pytest.raises(InputError, match=message):
        _create(tmp_path, SMALL.replace(*change))
    assert not (tmp_path / "ml").exists()


def test_a_multilabel_strategy_on_single_label_data_is_refused(tmp_path):
    text = 'data = { sklearn = "iris" }\nstrategies = ["random", "mmc"]\nn_rounds = 2\n'
    with pytest.raises(InputError, match=r"strategies\.1\.name: 'mmc' ranks multi-label models"):
        _create(tmp_path, text)


def test_a_file_with_one_column_per_class_is_multilabel_data(tmp_path):
    from active_labeling.experiment.config import DataSource
    from active_labeling.experiment.data import load_data, read_snapshot, write_snapshot

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    frame["spam"] = (frame["a"] > 0).astype(int)
    frame["urgent"] = frame["b"] > 0.5
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    data = load_data(DataSource(file=str(path), labels=["spam", "urgent"]))
    assert data.multi_label and data.class_names == ["spam", "urgent"]
    assert data.feature_names == ["a", "b", "c"]
    np.testing.assert_array_equal(data.y[:, 1], frame["urgent"].astype(int))
    write_snapshot(data, tmp_path / "data.parquet")
    again = read_snapshot(tmp_path / "data.parquet")
    np.testing.assert_array_equal(again.y, data.y)
    assert again.class_names == ["spam", "urgent"]
    frame.loc[7, "spam"] = 2
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"label column 'spam' holds 2 at row 7"):
        load_data(DataSource(file=str(path), labels=["spam", "urgent"]))
