"""The experiment runner: determinism, parallelism, resuming after a kill, replay."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from active_labeling.cli import main
from active_labeling.errors import InputError
from active_labeling.experiment.cache import ExperimentDir, RunBusyError, RunKey
from active_labeling.experiment.runner import (
    create_experiment,
    experiment_results,
    plan_seed,
    replay_experiment,
    run_experiment,
)

SMALL = """
name = "iris test"
data = { sklearn = "iris" }
model = { name = "logistic_regression", standardize = true }
strategies = ["random", "margin", { name = "kcenter", label = "farthest" }]
initial = { size = 6, method = "stratified" }
batch_size = 3
n_rounds = 4
seeds = 2
"""


def write_config(folder: Path, text: str = SMALL, name: str = "exp.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def run_files(root: Path) -> dict[str, bytes]:
    """Every run file's bytes, by path relative to the experiment folder."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "runs").rglob("*.csv"))
    }


def fresh_run(tmp_path: Path, name: str, text: str = SMALL, **kwargs) -> Path:
    out = tmp_path / name
    create_experiment(write_config(tmp_path, text, f"{name}.toml"), out)
    run_experiment(out, progress=False, **kwargs)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The small experiment, run uninterrupted in this process."""
    return fresh_run(tmp_path_factory.mktemp("reference"), "ref", n_jobs=1)


def test_the_cache_a_person_can_read(reference):
    experiment = ExperimentDir(reference)
    keys = experiment.run_keys()
    assert [str(k) for k in keys[:3]] == ["random/seed-0", "random/seed-1", "margin/seed-0"]
    selected = pd.read_csv(reference / "runs" / "margin" / "seed-1" / "selected.csv")
    assert list(selected.columns) == ["iteration", "position", "row_id", "label"]
    assert selected.groupby("iteration").size().tolist() == [6, 3, 3, 3, 3]
    assert selected["position"].is_unique
    metrics = pd.read_csv(reference / "runs" / "farthest" / "seed-0" / "metrics.csv")
    assert metrics["n_labeled"].tolist() == [6, 9, 12, 15, 18]
    assert metrics["accuracy"].between(0, 1).all()
    assert metrics["contradiction_ratio"].isna().tolist() == [True, False, False, False, False]
    assert (reference / "config.toml").is_file() and (reference / "data.parquet").is_file()


def test_the_log_holds_every_iteration_and_run(reference):
    import duckdb

    with duckdb.connect(str(reference / "log.duckdb"), read_only=True) as con:
        n_iterations = con.execute("SELECT count(*) FROM iterations").fetchone()[0]
        runs = con.execute(
            "SELECT strategy, seed, auc_trapezoid FROM runs ORDER BY strategy, seed"
        ).fetchall()
    assert n_iterations == 3 * 2 * 5
    metrics = pd.read_csv(reference / "runs" / "margin" / "seed-0" / "metrics.csv")
    from active_labeling.experiment.simulation import normalized_auc

    expected = normalized_auc(metrics["n_labeled"], metrics["accuracy"])
    assert ("margin", 0, pytest.approx(expected)) in runs


def test_strategies_of_a_seed_share_the_split_and_the_initial_labels(reference):
    def initial(strategy, seed):
        frame = pd.read_csv(reference / "runs" / strategy / f"seed-{seed}" / "selected.csv")
        return sorted(frame.loc[frame["iteration"] == 0, "position"])

    assert initial("random", 0) == initial("margin", 0) == initial("farthest", 0)
    assert initial("random", 0) != initial("random", 1)
    experiment = ExperimentDir(reference)
    plan = plan_seed(experiment.config, experiment.data(), 0, None)
    assert np.intersect1d(plan.pool, plan.test).size == 0
    assert sorted(plan.initial.tolist()) == initial("margin", 0)


def test_the_same_config_gives_the_same_files_and_one_worker_or_two_agree(tmp_path, reference):
    parallel = fresh_run(tmp_path, "parallel", n_jobs=2)
    assert run_files(parallel) == run_files(reference)


def test_a_run_cut_between_its_two_writes_resumes_to_the_same_files(tmp_path, reference):
    out = tmp_path / "cut"
    shutil.copytree(reference, out)
    run = out / "runs" / "margin" / "seed-1"
    # Killed after writing the selection of iteration 3, before its metrics: keep
    # metrics of iterations 0-2 only, and leave a temporary file behind.
    metrics = (run / "metrics.csv").read_text().splitlines(keepends=True)
    (run / "metrics.csv").write_text("".join(metrics[:4]))
    selected = pd.read_csv(run / "selected.csv")
    selected[selected["iteration"] <= 3].to_csv(run / "selected.csv", index=False)
    (run / ".metrics.csv.tmp-999").write_text("iteration,n_la")
    # Another run never started.
    shutil.rmtree(out / "runs" / "random" / "seed-0")
    summary = run_experiment(out, n_jobs=1, progress=False)
    assert summary.ran == 2 and summary.iterations == 5 + 2
    assert run_files(out) == run_files(reference)
    assert not list(run.glob(".*.tmp-*"))


def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_results(tmp_path, reference):
    config = write_config(tmp_path, SMALL, "k.toml")
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "active_labeling.cli", "experiment", "run", str(config)]
    process = subprocess.Popen(
        [*command, "--out", str(out), "--jobs", "1", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # any worker process is killed with the group
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            logged = [len(p.read_text().splitlines()) - 1 for p in out.glob("runs/*/*/metrics.csv")]
            if any(n >= 2 for n in logged):
                break
            time.sleep(0.02)
        assert process.poll() is None, process.stderr.read().decode()
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()
    experiment = ExperimentDir(out)
    done = [len(experiment.run_files(k).read_metrics()) for k in experiment.run_keys()]
    assert sum(done) < len(done) * experiment.n_iterations, "the kill came after the end"
    run_experiment(out, n_jobs=1, progress=False)
    assert run_files(out) == run_files(reference)


def test_replay_recomputes_the_logged_values_exactly_without_any_query(reference, monkeypatch):
    import active_labeling.samplers.registry as registry

    def no_query(*args, **kwargs):
        raise AssertionError("replay ran a strategy")

    monkeypatch.setattr(registry, "make_sampler", no_query)
    frame = replay_experiment(reference, n_jobs=1, progress=False)
    experiment = ExperimentDir(reference)
    assert set(frame["metric"]) == set(experiment.measures)
    assert len(frame) == 3 * 2 * 5 * len(experiment.measures)
    same = (frame["logged"] == frame["replayed"]) | (
        frame["logged"].isna() & frame["replayed"].isna()
    )
    assert same.all(), frame[~same].head()
    assert frame["replayed"].notna().sum() > len(frame) // 2
    written = pd.read_csv(reference / "replay.csv")
    assert len(written) == len(frame)


def test_replay_computes_a_metric_that_was_not_logged(reference):
    frame = replay_experiment(reference, ["balanced_accuracy"], n_jobs=1, progress=False)
    assert frame["logged"].isna().all()
    assert frame["replayed"].between(0, 1).all() and frame["replayed"].nunique() > 1
    with pytest.raises(InputError, match="unknown metric 'recall'"):
        replay_experiment(reference, ["recall"], progress=False)


def test_label_noise_and_swapped_halves(tmp_path):
    text = SMALL.replace("seeds = 2", 'seeds = 1\nlabel_noise = 0.3\ntest = "swap_halves"')
    out = fresh_run(tmp_path, "noisy", text, n_jobs=1)
    experiment = ExperimentDir(out)
    assert "mislabeled_ratio" in experiment.measures
    data = experiment.data()
    halves = [plan_seed(experiment.config, data, 0, h) for h in (0, 1)]
    assert np.array_equal(halves[0].pool, halves[1].test)
    assert np.array_equal(halves[0].test, halves[1].pool)
    frames = experiment_results(out)
    assert sorted(frames["half"].unique()) == [0, 1]
    # The oracle lies about some rows, the same rows for every strategy.
    lies = {}
    for strategy in ("random", "margin"):
        selected = pd.read_csv(out / "runs" / strategy / "seed-0-half-0" / "selected.csv")
        truth = data.y[selected["position"]].astype(str)
        lies[strategy] = set(selected.loc[selected["label"].astype(str) != truth, "position"])
    assert lies["random"] and lies["margin"]
    wrong = np.flatnonzero(halves[0].revealed != data.codes)
    assert lies["random"] <= set(wrong) and lies["margin"] <= set(wrong)
    last = frames[frames["iteration"] == 4]
    assert last["mislabeled_ratio"].between(0.05, 0.7).all()


def test_generator_data_logs_the_noisy_sample_ratio_and_an_oracle_strategy_runs(tmp_path):
    text = """
strategies = ["random", "informed_confidence"]
initial = { size = 6, method = "stratified" }
budget = 20
batch_size = 5
seeds = 1
monitoring = { enabled = false }
[data]
generator = "noisy_blobs_ld"
params = { n_samples = 300, n_blobs = 12, n_noisy_blobs = 6, n_classes = 3 }
[model]
name = "random_forest"
params = { n_estimators = 10, max_depth = 4 }
"""
    out = fresh_run(tmp_path, "blobs", text, n_jobs=1)
    frames = experiment_results(out)
    assert list(frames.columns[4:]) == ["n_labeled", "accuracy", "macro_f1", "noisy_ratio"]
    assert frames.groupby("strategy")["n_labeled"].max().tolist() == [20, 20]
    data = ExperimentDir(out).data()
    selected = pd.read_csv(out / "runs" / "informed_confidence" / "seed-0" / "selected.csv")
    last = frames[(frames["strategy"] == "informed_confidence") & (frames["iteration"] == 3)]
    assert last["noisy_ratio"].item() == pytest.approx(data.noisy[selected["position"]].mean())


def test_a_cache_from_another_config_is_refused_and_a_held_run_is_busy(tmp_path, reference):
    out = tmp_path / "other"
    shutil.copytree(reference, out)
    selected = out / "runs" / "random" / "seed-0" / "selected.csv"
    frame = pd.read_csv(selected)
    frame.loc[0, "position"] = int(np.setdiff1d(np.arange(150), frame["position"].to_numpy())[0])
    frame.to_csv(selected, index=False)
    (out / "runs" / "random" / "seed-0" / "metrics.csv").write_text(
        (reference / "runs" / "random" / "seed-0" / "metrics.csv").read_text().splitlines()[0]
        + "\n"
        + (reference / "runs" / "random" / "seed-0" / "metrics.csv").read_text().splitlines()[1]
        + "\n"
    )
    with pytest.raises(InputError, match="initial sample differs"):
        run_experiment(out, n_jobs=1, progress=False)
    experiment = ExperimentDir(out)
    files = experiment.run_files(RunKey("margin", 0))
    (files.folder / "metrics.csv").unlink()
    with files.lock():
        with pytest.raises(RunBusyError, match="another process"):
            from active_labeling.experiment.runner import execute_run

            execute_run(str(out), RunKey("margin", 0))


def test_a_budget_beyond_the_pool_and_a_busy_folder_are_refused(tmp_path):
    config = write_config(tmp_path, SMALL.replace("n_rounds = 4", "n_rounds = 40"))
    with pytest.raises(InputError, match="n_rounds: the runs end with 126 labeled rows"):
        create_experiment(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(InputError, match="already exists and is not empty"):
        create_experiment(write_config(tmp_path), tmp_path / "full")


def test_the_cli_runs_resumes_and_replays(tmp_path, capsys):
    config = write_config(tmp_path, SMALL.replace("seeds = 2", "seeds = 1"))
    out = tmp_path / "cli"
    assert (
        main(["experiment", "run", str(config), "--out", str(out), "--jobs", "1", "--quiet"]) == 0
    )
    assert "3 of 3 runs needed work" in capsys.readouterr().out
    assert main(["experiment", "resume", str(out), "--quiet"]) == 0
    assert "0 of 3 runs needed work" in capsys.readouterr().out
    replay = ["experiment", "replay", str(out), "--metric", "accuracy", "--jobs", "1"]
    assert main([*replay, "--quiet"]) == 0
    assert "accuracy: 15 of 15 values equal to the log" in capsys.readouterr().out
    assert main(["experiment", "resume", str(tmp_path / "nothing")]) == 1
    assert "is not an experiment folder" in capsys.readouterr().err


WINE_KCENTER = """
data = { sklearn = "wine" }
model = { name = "logistic_regression", standardize = true, strategy_features = "SPACE" }
strategies = ["kcenter"]
initial = { size = 6, method = "stratified" }
batch_size = 4
n_rounds = 2
seeds = 1
monitoring = { enabled = false }
"""


def _kcenter_batch_by_hand(experiment: ExperimentDir, scale: bool) -> list[int]:
    """Iteration 1 of seed 0, recomputed: k-center from the initial labels, on the features
    standardized as the model's pipeline does (fitted on the labeled rows) or as loaded."""
    from sklearn.preprocessing import StandardScaler

    from active_labeling.samplers import KCenterGreedySampler

    data = experiment.data()
    plan = plan_seed(experiment.config, data, 0, None)
    X = data.X
    if scale:
        X = StandardScaler().fit(X[plan.initial]).transform(X)
    unlabeled = np.setdiff1d(plan.pool, plan.initial)
    picks = KCenterGreedySampler(batch_size=4).fit(X[plan.initial]).select_samples(X[unlabeled])
    return unlabeled[picks].tolist()


def test_distance_strategies_measure_in_the_model_feature_space_unless_told(tmp_path):
    # Wine mixes scales (proline ~1,000, hue ~1): where distances are measured decides the batch.
    batches = {}
    for space in ("model", "input"):
        out = fresh_run(tmp_path, space, WINE_KCENTER.replace("SPACE", space), n_jobs=1)
        experiment = ExperimentDir(out)
        assert experiment.config.model.strategy_features == space
        selected = pd.read_csv(out / "runs" / "kcenter" / "seed-0" / "selected.csv")
        batches[space] = selected.loc[selected["iteration"] == 1, "position"].tolist()
        assert batches[space] == _kcenter_batch_by_hand(experiment, scale=space == "model")
    assert batches["model"] != batches["input"]


def test_an_experiment_of_format_1_keeps_the_features_as_loaded(tmp_path, reference):
    import json

    old = tmp_path / "old"
    shutil.copytree(reference, old)
    meta = json.loads((old / "experiment.json").read_text())
    (old / "experiment.json").write_text(json.dumps(dict(meta, format=1)))
    config = (old / "config.toml").read_text()
    assert 'strategy_features = "model"' in config
    (old / "config.toml").write_text(config.replace('strategy_features = "model"\n', ""))
    assert ExperimentDir(old).config.model.strategy_features == "input"
    assert ExperimentDir(reference).config.model.strategy_features == "model"
