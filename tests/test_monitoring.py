"""The monitoring recipe: which labels each version saw, each metric checked by hand."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from loop_helpers import label, make_blobs_project
from scipy.spatial.distance import cdist
from sklearn.metrics import cohen_kappa_score
from sklearn.neighbors import KNeighborsClassifier

from active_labeling.errors import InputError
from active_labeling.flow.monitoring import (
    ADVICE_SCHEMA,
    METRIC_SCHEMA,
    MonitoringParams,
    contradiction_sample,
    latest_advice,
    metric_history,
    monitor,
)
from active_labeling.flow.project import Project
from active_labeling.flow.recipes import add_recipe, run_recipe
from active_labeling.flow.train_model import TrainModelParams, train_model
from active_labeling.models import load_model
from active_labeling.store import datasets
from active_labeling.store.labels import LabelEvent, append_events

from flow_helpers import make_project


def _train(con, project, model="clf"):
    return train_model(
        con, project, dataset="pool", model=model, params=TrainModelParams(cv_folds=3)
    )


def _values(history: pd.DataFrame, metric: str) -> dict[str, float]:
    rows = history[history["metric"] == metric]
    return dict(zip(rows["model_version"], rows["value"], strict=True))


@pytest.fixture(scope="module")
def _three_versions_built(tmp_path_factory):
    root = tmp_path_factory.mktemp("three") / "p"
    project, oracle = make_blobs_project(root, n=200, n_holdout=60)
    ids = list(oracle)
    with project.connect() as con:
        label(con, oracle, ids[:20])
        _train(con, project)
        label(con, oracle, ids[20:35], annotator="bob")
        _train(con, project)
        label(con, oracle, ids[35:50], wrong=True)
        _train(con, project)
    return root, oracle, ids


@pytest.fixture
def three_versions(_three_versions_built, tmp_path):
    """Versions 1-3 of 'clf' on 20, 35 and 50 labels; the third batch labeled wrongly.

    Built once, copied for each test (the tests append to the store)."""
    built, oracle, ids = _three_versions_built
    shutil.copytree(built, tmp_path / "p")
    return Project.open(tmp_path / "p"), oracle, ids


def test_each_version_is_measured_on_the_labels_it_was_trained_on(three_versions):
    project, oracle, ids = three_versions
    with project.connect() as con:
        result = monitor(
            con, project, dataset="pool", model="clf", holdout="holdout", params=MonitoringParams()
        )
        history = metric_history(con, "clf")
        event_ids = [row[0] for row in con.execute("SELECT event_id FROM label_events").fetchall()]
    assert result.versions == ["1", "2", "3"]
    assert result.n_rows == len(history)
    saved = {v: load_model(project.models_dir, "clf", v) for v in ("1", "2", "3")}
    # The train-model recipe recorded the largest event id it read: 20, 35 and 50 labels.
    assert [saved[v].meta.label_event_id for v in ("1", "2", "3")] == [
        sorted(event_ids)[k - 1] for k in (20, 35, 50)
    ]
    per_version = history.groupby("model_version")["n_labels"].unique()
    assert {v: list(n) for v, n in per_version.items()} == {"1": [20], "2": [35], "3": [50]}
    assert [saved[v].meta.training_rows for v in ("1", "2", "3")] == [20, 35, 50]
    assert _values(history, "batch_size") == {"2": 15.0, "3": 15.0}

    # The sample is the whole pool here (200 rows < 10,000): contradictions by hand.
    with project.connect() as con:
        pool = con.execute(f"SELECT * FROM {datasets.table_of('pool')}").df()
    predictions = {v: s.pipeline.predict(pool[["x1", "x2"]]) for v, s in saved.items()}
    assert _values(history, "contradiction_ratio") == pytest.approx(
        {
            "2": np.mean(predictions["1"] != predictions["2"]),
            "3": np.mean(predictions["2"] != predictions["3"]),
        }
    )
    proba = saved["3"].pipeline.predict_proba(pool[["x1", "x2"]])
    assert _values(history, "mean_confidence")["3"] == pytest.approx(proba.max(axis=1).mean())
    assert _values(history, "stop_set_kappa")["3"] == pytest.approx(
        cohen_kappa_score(predictions["2"], predictions["3"])
    )
    # Uncertainty on the sample rows still unlabeled at version 3 (all but the 50 labeled).
    unlabeled = ~pool["item_id"].isin(ids[:50]).to_numpy()
    least_confidence = 1 - proba[unlabeled].max(axis=1)
    assert _values(history, "overall_uncertainty")["3"] == pytest.approx(least_confidence.mean())
    assert _values(history, "max_uncertainty")["3"] == pytest.approx(least_confidence.max())

    # Easiness: the previous version's accuracy on the batch's labels (the third batch was
    # labeled against the oracle, so the easy problem's model is wrong on all of it).
    frame = pool.set_index("item_id")
    batch2 = ids[20:35]
    expected = np.mean(
        saved["1"].pipeline.predict(frame.loc[batch2]) == [oracle[i] for i in batch2]
    )
    easiness = _values(history, "batch_easiness")
    assert easiness["2"] == pytest.approx(expected)
    assert easiness["3"] < 0.2 < easiness["2"]

    # Exploration: distances in version 2's feature space (its scaler), batch to earlier set.
    space = saved["2"].pipeline[:-1]
    distances = cdist(space.transform(frame.loc[batch2]), space.transform(frame.loc[ids[:20]]))
    assert _values(history, "exploration_distance")["2"] == pytest.approx(
        distances.min(axis=1).mean()
    )
    # What a random batch would have reached: the rows unlabeled before batch 2.
    spare = [i for i in frame.index if i not in set(ids[:20])]
    to_labeled = cdist(space.transform(frame.loc[spare]), space.transform(frame.loc[ids[:20]]))
    assert _values(history, "random_exploration_distance")["2"] == pytest.approx(
        to_labeled.min(axis=1).mean()
    )
    assert all(v >= 0 for v in _values(history, "exploration_gain").values())

    # Agreement: the version that chose batch 2 (version 1) against a 1-NN on the 20 labels
    # before it, in version 2's feature space; neither knows the batch's labels.
    nn = KNeighborsClassifier(n_neighbors=1).fit(
        space.transform(frame.loc[ids[:20]]), [oracle[i] for i in ids[:20]]
    )
    expected = cohen_kappa_score(
        saved["1"].pipeline.predict(frame.loc[batch2]),
        nn.predict(space.transform(frame.loc[batch2])),
    )
    assert _values(history, "batch_agreement")["2"] == pytest.approx(expected, nan_ok=True)
    expected = cohen_kappa_score(
        saved["1"].pipeline.predict(frame.loc[spare]),
        nn.predict(space.transform(frame.loc[spare])),
    )
    assert _values(history, "random_batch_agreement")["2"] == pytest.approx(expected)
    space3, batch3 = saved["3"].pipeline[:-1], ids[35:50]
    nn = KNeighborsClassifier(n_neighbors=1).fit(
        space3.transform(frame.loc[ids[:35]]), [oracle[i] for i in ids[:35]]
    )
    # Version 3 learned batch 3's wrong labels: with it, agreement reads 0.61 here, not 1.
    chose = saved["2"].pipeline.predict(frame.loc[batch3])
    expected = cohen_kappa_score(chose, nn.predict(space3.transform(frame.loc[batch3])))
    assert _values(history, "batch_agreement")["3"] == pytest.approx(expected, nan_ok=True)

    # Holdout scores by hand, not optimistic.
    with project.connect() as con:
        holdout = con.execute(f"SELECT * FROM {datasets.table_of('holdout')}").df()
    for version, model in saved.items():
        accuracy = np.mean(model.pipeline.predict(holdout[["x1", "x2"]]) == holdout["label"])
        assert _values(history, "holdout_accuracy")[version] == pytest.approx(accuracy)
    holdout_rows = history[history["metric"] == "holdout_accuracy"]
    assert all(d["optimistic"] is False for d in holdout_rows["details"])
    assert not history["metric"].str.startswith("cv_").any()

    shares = history[history["metric"] == "class_share"].groupby("model_version")["value"].sum()
    assert shares.to_numpy() == pytest.approx([1.0, 1.0, 1.0])
    annotators = {
        d["annotator"] for d in history.loc[history["metric"] == "labels_per_hour", "details"]
    }
    assert annotators == {"ann", "bob"}
    advice = latest_advice(con := project.connect(read_only=True))
    con.close()
    assert advice["model_version"] == "3" and advice["n_labels"] == 50
    assert advice["advice"] in ("continue", "check", "stop") and advice["reasons"]


def test_a_version_is_measured_once_and_new_ones_alone(three_versions):
    project, oracle, ids = three_versions
    params = MonitoringParams(sample_size=50)
    with project.connect() as con:
        monitor(con, project, dataset="pool", model="clf", params=params)
        before = len(metric_history(con))
        again = monitor(con, project, dataset="pool", model="clf", params=params)
        assert again.versions == [] and again.n_rows == 0
        assert len(metric_history(con)) == before
        assert again.advice["model_version"] == "3"
        label(con, oracle, ids[50:70])
        _train(con, project)
        fourth = monitor(con, project, dataset="pool", model="clf", params=params)
        history = metric_history(con)
        advice_rows = con.execute("SELECT model_version FROM stopping_advice").fetchall()
    assert fourth.versions == ["4"]
    assert len(history) == before + fourth.n_rows
    assert sorted(r[0] for r in advice_rows) == ["1", "2", "3", "4"]
    assert set(history.loc[history["model_version"] == "4", "n_labels"]) == {70}


def test_without_holdout_accuracy_is_the_versions_cross_validation_marked_optimistic(
    three_versions,
):
    project, _, _ = three_versions
    with project.connect() as con:
        monitor(con, project, dataset="pool", model="clf", params=MonitoringParams())
        history = metric_history(con)
    saved = load_model(project.models_dir, "clf", "2")
    rows = history[(history["metric"] == "cv_accuracy") & (history["model_version"] == "2")]
    assert rows["value"].item() == pytest.approx(saved.meta.cv_scores.accuracy.mean)
    assert rows["details"].item()["optimistic"] is True
    assert not (history["metric"] == "holdout_accuracy").any()


def test_the_contradiction_sample_is_drawn_once_per_seed_and_reused(tmp_path):
    first, _ = make_blobs_project(tmp_path / "a", n=300)
    second, _ = make_blobs_project(tmp_path / "b", n=300)
    with first.connect() as con:
        sample = contradiction_sample(con, "pool", 50, 7)
        assert contradiction_sample(con, "pool", 50, 7) == sample
        stored = con.execute("SELECT count(*) FROM monitoring_samples").fetchall()[0][0]
        other_seed = contradiction_sample(con, "pool", 50, 8)
        whole = contradiction_sample(con, "pool", 10_000, 7)
    with second.connect() as con:
        assert contradiction_sample(con, "pool", 50, 7) == sample  # same data, same seed
    assert len(sample) == len(set(sample)) == 50 and stored == 50
    assert other_seed != sample
    assert len(whole) == 300


def test_mixed_columns_are_measured_in_the_models_feature_space(tmp_path):
    project = make_project(tmp_path / "p", n=80, n_labels=20)
    with project.connect() as con:
        _train(con, project)
        labeled = {row[0] for row in con.execute("SELECT item_id FROM current_labels").fetchall()}
        new = [f"I{i}" for i in range(80) if f"I{i}" not in labeled][:20]
        append_events(
            con,
            [
                LabelEvent("pool", item, "labeled", "ann", label=("yes", "no")[k % 2])
                for k, item in enumerate(new)
            ],
        )
        _train(con, project)
        monitor(con, project, dataset="pool", model="clf", params=MonitoringParams())
        history = metric_history(con)
    # Numbers (scaled), a category (one-hot) and free text (TF-IDF) in one space.
    for metric in ("exploration_distance", "exploration_gain"):
        assert _values(history, metric)["2"] > 0, metric
    assert "2" in _values(history, "batch_agreement")


def test_a_version_saved_without_its_event_mark_is_placed_by_its_training_time(
    three_versions,
):
    project, _, _ = three_versions
    meta_path = project.models_dir / "clf" / "2" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["label_event_id"]
    meta_path.write_text(json.dumps(meta))
    with project.connect() as con:
        monitor(con, project, dataset="pool", model="clf", params=MonitoringParams())
        history = metric_history(con)
    assert set(history.loc[history["model_version"] == "2", "n_labels"]) == {35}


def test_bad_inputs_are_named(three_versions, tmp_path):
    project, _, _ = three_versions
    with project.connect() as con:
        with pytest.raises(InputError, match="no saved model 'other' yet"):
            monitor(con, project, dataset="pool", model="other", params=MonitoringParams())
        with pytest.raises(InputError, match="'nope'"):
            monitor(
                con,
                project,
                dataset="pool",
                model="clf",
                holdout="holdout",
                params=MonitoringParams(holdout_label_column="nope"),
            )
        assert metric_history(con).empty  # nothing written by the failed runs
        bad = tmp_path / "bad.csv"
        bad.write_text("id,x1,x2,label\nB1,0.1,0.2,a\nB2,0.3,0.1,\n")
        project.record_dataset(datasets.import_file(con, "bad", bad, id_column="id"))
        with pytest.raises(InputError, match="item 'B2': column 'label' is empty"):
            monitor(
                con, project, dataset="pool", model="clf", holdout="bad", params=MonitoringParams()
            )


def test_labeler_agreement_is_measured_on_items_two_annotators_labeled(tmp_path):
    project, oracle = make_blobs_project(tmp_path / "p", n=100)
    ids = list(oracle)
    with project.connect() as con:
        label(con, oracle, ids[:30], annotator="ann")
        label(con, oracle, ids[:10], annotator="bob")  # the same 10 items, the same classes
        _train(con, project)
        monitor(con, project, dataset="pool", model="clf", params=MonitoringParams())
        history = metric_history(con)
    kappa = history[history["metric"] == "labeler_kappa"]
    assert kappa["value"].item() == pytest.approx(1.0)
    assert kappa["details"].item() == {"method": "cohen", "n_items": 10, "n_annotators": 2}
    assert _values(history, "median_lead_time_s")["1"] == pytest.approx(3.0)


def test_the_recipe_appends_and_writes_its_parquet_copies(tmp_path):
    project, oracle = make_blobs_project(tmp_path / "p", n=100)
    with project.connect() as con:
        label(con, oracle, list(oracle)[:20])
    add_recipe(
        project,
        "train-model",
        "train",
        inputs={"dataset": ["pool"], "labels": ["labels"]},
        outputs={"model": ["clf"]},
        params={"cv_folds": 3},
    )
    add_recipe(
        project,
        "monitoring",
        "monitor",
        inputs={"pool": ["pool"], "labels": ["labels"], "model": ["clf"]},
        outputs={"metrics": ["curves"], "advice": ["advice"]},
        params={"sample_size": 30},
    )
    run_recipe(project, "train", progress=False)
    run_recipe(project, "monitor", progress=False)
    copy = pd.read_parquet(project.exports_dir / "monitoring" / "curves.parquet")
    with project.connect(read_only=True) as con:
        assert len(copy) == len(metric_history(con)) > 0
    assert (project.exports_dir / "monitoring" / "advice.parquet").is_file()


def test_reading_an_empty_store(tmp_path):
    project, _ = make_blobs_project(tmp_path / "p", n=10)
    with project.connect(read_only=True) as con:
        history = metric_history(con)
        assert history.empty and "details" in history.columns
        assert latest_advice(con) is None


def test_the_appended_rows_have_the_store_tables_columns(tmp_path):
    project, _ = make_blobs_project(tmp_path / "p", n=10)
    with project.connect(read_only=True) as con:
        for table, schema in (("metrics", METRIC_SCHEMA), ("stopping_advice", ADVICE_SCHEMA)):
            columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
            assert columns == schema.names, table


def test_the_latest_advice_is_the_newest_version_even_with_fewer_labels(tmp_path):
    # One monitoring run stamps all its versions with one time; after undos, version 5 has
    # fewer labels than version 4, and its advice is still the latest.
    from datetime import datetime, timezone

    from active_labeling.flow.monitoring import _append

    project, _ = make_blobs_project(tmp_path / "p", n=10)
    now = datetime.now(timezone.utc)
    rows = [
        {
            "dataset": "pool",
            "advice": advice,
            "reasons": "[]",
            "model_name": "clf",
            "model_version": version,
            "n_labels": n,
            "computed_at": now,
        }
        for version, n, advice in (("9", 40, "check"), ("10", 50, "continue"), ("11", 30, "stop"))
    ]
    with project.connect() as con:
        _append(con, [], rows)
        latest = latest_advice(con, "clf")
    assert (latest["model_version"], latest["advice"]) == ("11", "stop")
