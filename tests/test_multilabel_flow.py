"""A multi-label project's loop: train, rank the queue, and refuse what does not fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from active_labeling.errors import InputError
from active_labeling.flow.recipes import run_recipe
from active_labeling.samplers import MeanBinaryUncertaintySampler
from active_labeling.samplers.registry import SINGLE_LABEL_STRATEGIES, STRATEGIES
from active_labeling.store import queue

from flow_helpers import declare_train_and_query, make_multilabel_project, store_fingerprint

MULTI_LABEL_CAPABLE = [s for s in STRATEGIES if s not in SINGLE_LABEL_STRATEGIES]


def _declare(project, **query_params):
    declare_train_and_query(project, **{"queue_size": 15, "chunk_size": 64, **query_params})


def _generation_params(project, generation_id):
    with project.connect(read_only=True) as con:
        row = con.execute(
            "SELECT params FROM queue_generations WHERE generation_id = ?", [generation_id]
        ).fetchone()
    return json.loads(row[0])


@pytest.mark.parametrize("strategy", MULTI_LABEL_CAPABLE)
def test_every_strategy_for_multilabel_models_runs_as_a_recipe(strategy, tmp_path):
    project = make_multilabel_project(tmp_path / "p", n=160, n_labels=30)
    _declare(project, strategy=strategy, random_state=1)
    run_recipe(project, "train", progress=False)
    run_recipe(project, "query", progress=False)
    run_recipe(project, "query", progress=False)
    with project.connect(read_only=True) as con:
        first = queue.generation_items(con, 1)["item_id"].tolist()
        second = queue.generation_items(con, 2)["item_id"].tolist()
        labeled = {r[0] for r in con.execute("SELECT item_id FROM current_labels").fetchall()}
    assert len(first) == 15 and len(set(first)) == 15 and not set(first) & labeled
    assert first == second  # same seed, same queue


def test_the_multilabel_queue_is_the_samplers_selection_on_the_whole_pool(tmp_path):
    from active_labeling.flow.labeled_data import labeled_frame
    from active_labeling.models import load_model

    project = make_multilabel_project(tmp_path / "p", n=200, n_labels=40)
    _declare(project, strategy="mean_binary_uncertainty")
    run_recipe(project, "train", progress=False)
    run_recipe(project, "query", progress=False)
    saved = load_model(project.models_dir, "clf")
    with project.connect(read_only=True) as con:
        frame = con.execute("SELECT * FROM dataset_pool").df()
        labeled, _ = labeled_frame(con, "pool", saved.meta.feature_columns)
        got = queue.generation_items(con, 1)
    pool = frame[~frame["item_id"].isin(labeled.index)].reset_index(drop=True)
    sampler = MeanBinaryUncertaintySampler(saved.pipeline, 15, prefit=True).fit()
    expected = pool["item_id"].iloc[sampler.select_samples(pool[saved.meta.feature_columns])]
    assert got["item_id"].tolist() == expected.tolist()
    assert got["score"].is_monotonic_decreasing


def test_the_model_thresholds_go_to_label_cardinality_and_are_recorded(tmp_path):
    project = make_multilabel_project(tmp_path / "p", n=160, n_labels=40)
    _declare(project, strategy="label_cardinality")
    run_recipe(project, "train", progress=False)
    run_recipe(project, "query", progress=False)
    meta = json.loads((project.models_dir / "clf" / "1" / "meta.json").read_text())
    recorded = _generation_params(project, 1)["strategy_params"]
    assert recorded == {"thresholds": list(meta["thresholds"].values())}


@pytest.mark.parametrize("strategy", sorted(SINGLE_LABEL_STRATEGIES))
def test_a_single_label_strategy_on_a_multilabel_model_is_refused_naming_the_field(
    strategy, tmp_path
):
    project = make_multilabel_project(tmp_path / "p", n=100, n_labels=30)
    _declare(project, strategy=strategy)
    run_recipe(project, "train", progress=False)
    before = store_fingerprint(project)
    with pytest.raises(InputError, match=rf"^strategy: '{strategy}' ranks single-label models"):
        run_recipe(project, "query", progress=False)
    assert store_fingerprint(project) == before


def test_a_multilabel_strategy_on_a_single_label_project_is_refused_naming_the_field(tmp_path):
    from flow_helpers import make_project

    project = make_project(tmp_path / "p", n=100, n_labels=20)
    _declare(project, strategy="mmc")
    run_recipe(project, "train", progress=False)
    with pytest.raises(InputError, match=r"^strategy: 'mmc' ranks multi-label models"):
        run_recipe(project, "query", progress=False)


def test_a_model_of_the_other_kind_is_refused_naming_the_field(tmp_path):
    """A project switched to multi-label (or back) keeps its earlier model versions: ranking
    or monitoring with them is refused until a model of the project's kind is trained."""
    project = make_multilabel_project(tmp_path / "p", n=100, n_labels=30)
    _declare(project, strategy="mmc")
    run_recipe(project, "train", progress=False)
    project.config.project.multi_label = False
    project.save()
    with pytest.raises(
        InputError,
        match=r"model 'clf' version 1 is multi-label \(multi_label = true in its meta\.json\) "
        r"but .*project\.toml has multi_label = false",
    ):
        run_recipe(project, "query", progress=False)


def test_auto_on_a_multilabel_project_climbs_the_multilabel_ladder(tmp_path):
    project = make_multilabel_project(tmp_path / "p", n=120, n_labels=30)
    _declare(project, strategy="auto")
    run_recipe(project, "train", progress=False)
    run_recipe(project, "query", progress=False)
    params = _generation_params(project, 1)
    assert params["auto"]["chosen"] == "mean_binary_uncertainty"
    with project.connect(read_only=True) as con:
        strategy = con.execute("SELECT strategy FROM queue_generations").fetchone()[0]
    assert strategy == "mean_binary_uncertainty"


def test_a_label_set_outside_the_models_classes_stops_the_query_naming_the_item(tmp_path):
    from active_labeling.store.labels import LabelEvent, append_events

    project = make_multilabel_project(tmp_path / "p", n=100, n_labels=30)
    _declare(project, strategy="mmc")
    run_recipe(project, "train", progress=False)
    with project.connect() as con:
        append_events(con, [LabelEvent("pool", "I50", "labeled", "ann", label='["mauve"]')])
    with pytest.raises(InputError, match=r"item 'I50': label .*class 'mauve' is not one"):
        run_recipe(project, "query", progress=False)


def test_multilabel_training_reports_its_scores_and_thresholds(tmp_path, capsys):
    project = make_multilabel_project(tmp_path / "p", n=160, n_labels=60)
    _declare(project)
    run_recipe(project, "train", progress=False)
    out = capsys.readouterr().out
    assert "model 'clf' version 1: multi-label one_vs_rest logistic_regression on 60" in out
    assert "cross-validated micro F1" in out and "thresholds red " in out
    meta = json.loads((project.models_dir / "clf" / "1" / "meta.json").read_text())
    assert meta["multi_label_method"] == "one_vs_rest"
    assert set(meta["cv_scores"]) >= {"f1_micro", "f1_macro", "hamming_loss", "subset_accuracy"}
    assert np.isfinite(list(meta["thresholds"].values())).all()


# -- monitoring and the stopping advice ------------------------------------------------------


def _label_sets(project, items, annotator="ann", sets=None):
    from active_labeling.store.labels import LabelEvent, append_events

    from flow_helpers import COLORS, multilabel_rows

    _, Y = multilabel_rows(200)
    events = []
    for item in items:
        row = Y[int(item[1:])] if sets is None else sets[item]
        chosen = [c for c, held in zip(COLORS, row, strict=True) if held]
        events.append(
            LabelEvent(
                "pool", item, "labeled", annotator, label=json.dumps(chosen), lead_time_ms=4000
            )
        )
    with project.connect() as con:
        append_events(con, events)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    """A multi-label project with three model versions (30, 45, 60 labels; bob relabels
    the imported items I0-I9 keeping only the first class of each set), a holdout with
    label sets, and one monitoring run."""
    from active_labeling.flow.monitoring import MonitoringParams, metric_history, monitor
    from active_labeling.flow.train_model import TrainModelParams, train_model
    from active_labeling.store import datasets

    from flow_helpers import COLORS, multilabel_rows

    root = tmp_path_factory.mktemp("monitored") / "p"
    project = make_multilabel_project(root, n=200, n_labels=30)
    X, Y = multilabel_rows(260)
    holdout = pd.DataFrame({"id": [f"H{i}" for i in range(60)]})
    for j in range(3):
        holdout[f"x{j + 1}"] = X[200:, j]
    holdout["label"] = [
        json.dumps([c for c, y in zip(COLORS, row, strict=True) if y]) for row in Y[200:]
    ]
    holdout.to_csv(root / "holdout.csv", index=False)
    bob = {f"I{i}": Y[i] * (np.cumsum(Y[i]) <= 1) for i in range(10)}
    with project.connect() as con:
        project.record_dataset(
            datasets.import_file(con, "holdout", root / "holdout.csv", id_column="id")
        )
    _label_sets(project, [f"I{i}" for i in range(10)], annotator="bob", sets=bob)
    params = TrainModelParams(cv_folds=3)
    for upto in (30, 45, 60):
        _label_sets(project, [f"I{i}" for i in range(upto - 15, upto)] if upto > 30 else [])
        with project.connect() as con:
            train_model(con, project, dataset="pool", model="clf", params=params)
    with project.connect() as con:
        result = monitor(
            con,
            project,
            dataset="pool",
            model="clf",
            holdout="holdout",
            params=MonitoringParams(sample_size=150),
        )
        history = metric_history(con, "clf")
    return project, result, history


def _value(history, metric, version, **details):
    rows = history[(history.metric == metric) & (history.model_version == version)]
    rows = rows[[all(d.get(k) == v for k, v in details.items()) for d in rows["details"]]]
    assert len(rows) == 1, (metric, version, details)
    return float(rows["value"].iloc[0]), rows["details"].iloc[0]


def test_multilabel_monitoring_measures_sets_by_hand(monitored):
    from active_labeling.flow.monitoring import contradiction_sample
    from active_labeling.models import load_model
    from active_labeling.models.multilabel import predict_label_sets

    project, result, history = monitored
    assert result.versions == ["1", "2", "3"]
    with project.connect(read_only=True) as con:
        ids = contradiction_sample(con, "pool", 150, 0)
        pool = con.execute("SELECT * FROM dataset_pool").df().set_index("item_id").loc[ids]
    models = {v: load_model(project.models_dir, "clf", v) for v in ("1", "2", "3")}
    proba = {v: s.pipeline.predict_proba(pool[s.meta.feature_columns]) for v, s in models.items()}
    sets = {
        v: predict_label_sets(proba[v], list(models[v].meta.thresholds.values())) for v in proba
    }
    for version, previous in [("2", "1"), ("3", "2")]:
        changed = (sets[version] != sets[previous]).any(axis=1).mean()
        value, details = _value(history, "contradiction_ratio", version)
        assert value == pytest.approx(changed) and details["method"] == "label set changed"
        union = (sets[version] | sets[previous]).sum(axis=1)
        both = (sets[version] & sets[previous]).sum(axis=1)
        jaccard = np.where(union > 0, both / np.maximum(union, 1), 1.0).mean()
        value, details = _value(history, "stop_set_kappa", version)
        assert value == pytest.approx(jaccard) and details["method"] == "jaccard"
    # Version 3's uncertainty: the mean over classes of min(p, 1 - p), on unlabeled rows:
    # the 60 labeled items, but for those of I0-I9 where bob's set and the imported one
    # differ (a tie of two labels per class: disputed, no label until a reviewer decides).
    from flow_helpers import multilabel_rows

    _, Y = multilabel_rows(200)
    disputed = {f"I{i}" for i in range(10) if Y[i].sum() > 1}
    labeled = [f"I{i}" for i in range(60) if f"I{i}" not in disputed]
    unlabeled = ~pool.index.isin(labeled)
    per_row = np.minimum(proba["3"], 1 - proba["3"]).mean(axis=1)[unlabeled]
    assert _value(history, "overall_uncertainty", "3")[0] == pytest.approx(per_row.mean())
    assert _value(history, "max_uncertainty", "3")[0] == pytest.approx(per_row.max())
    confidence = np.maximum(proba["3"], 1 - proba["3"]).mean()
    assert _value(history, "mean_confidence", "3")[0] == pytest.approx(confidence)


def test_multilabel_monitoring_scores_the_holdout_and_the_labels(monitored):
    history = monitored[2]
    value, details = _value(history, "holdout_accuracy", "3")
    assert details["score"] == "subset" and 0 <= value <= 1
    micro = _value(history, "holdout_micro_f1", "3")[0]
    assert 0.5 < micro <= 1 and 0 < _value(history, "holdout_hamming_loss", "3")[0] < 0.4
    shares = {
        c: _value(history, "class_share", "3", **{"class": c})[0] for c in ("red", "green", "blue")
    }
    assert all(0 < share < 1 for share in shares.values())
    assert _value(history, "label_cardinality", "3")[0] == pytest.approx(sum(shares.values()))


def test_multilabel_monitoring_measures_labelers_agreement_per_class(monitored):
    """The import and bob both labeled I0..I9: bob kept only the first class of each set.
    Per class, Cohen's kappa on their yes/no answers; labeler_kappa is their mean."""
    from sklearn.metrics import cohen_kappa_score

    from flow_helpers import COLORS, multilabel_rows

    history = monitored[2]
    _, Y = multilabel_rows(200)
    ann, bob = Y[:10], Y[:10] * (np.cumsum(Y[:10], axis=1) <= 1)
    expected = {}
    for j, c in enumerate(COLORS):
        value, details = _value(history, "labeler_class_kappa", "3", **{"class": c})
        expected[c] = cohen_kappa_score(ann[:, j], bob[:, j])
        assert value == pytest.approx(expected[c]) and details["n_items"] == 10
    mean, details = _value(history, "labeler_kappa", "3")
    assert mean == pytest.approx(np.mean(list(expected.values())))
    assert details["method"] == "mean per-class cohen kappa"


def test_the_advice_reads_the_multilabel_signals(monitored):
    """The cautious preset stops on max-confidence: it reads the multi-label
    max_uncertainty, and says so with its value."""
    from active_labeling.flow.monitoring import latest_advice

    project, _, history = monitored
    with project.connect(read_only=True) as con:
        advice = latest_advice(con, "clf")
    assert advice["model_version"] == "3" and advice["advice"] in ("continue", "stop", "check")
    value = _value(history, "max_uncertainty", "3")[0]
    assert any(f"{value:.4g}" in reason for reason in advice["reasons"])
    rules = {vote["rule"] for vote in advice["votes"]}
    assert {"max_confidence", "contradictions", "stabilizing_predictions"} <= rules


# -- the labeling app's hints ------------------------------------------------------------------


def test_the_hint_of_a_multilabel_model_is_the_predicted_set(tmp_path):
    from fastapi.testclient import TestClient

    from active_labeling.labeling.app import create_app
    from active_labeling.labeling.auth import add_user
    from active_labeling.models import load_model
    from active_labeling.models.multilabel import predict_label_sets

    from flow_helpers import COLORS

    project = make_multilabel_project(tmp_path / "p", n=120, n_labels=40)
    declare_train_and_query(project, run=True, queue_size=10, strategy="mmc")
    with project.connect() as con:
        password = add_user(con, "ann", "labeler")
        pool = con.execute("SELECT * FROM dataset_pool").df().set_index("item_id")
    app = create_app(project.root)
    client = TestClient(app)
    response = client.post("/api/login", json={"username": "ann", "password": password})
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    items = client.get("/api/items/next?count=3&hint=1").json()["items"]
    saved = load_model(project.models_dir, "clf")
    proba = saved.pipeline.predict_proba(
        pool.loc[[i["item_id"] for i in items], ["x1", "x2", "x3"]]
    )
    sets = predict_label_sets(proba, list(saved.meta.thresholds.values()))
    for item, p, chosen in zip(items, proba, sets, strict=True):
        hint = item["prediction"]
        expected = [c for c, held in zip(COLORS, chosen, strict=True) if held]
        assert hint["labels"] == expected
        assert hint["label"] == (", ".join(expected) or "no class")
        assert hint["probabilities"] == {
            c: round(float(v), 4) for c, v in zip(COLORS, p, strict=True)
        }
        decided = np.where(chosen == 1, p, 1 - p).mean()
        assert hint["confidence"] == pytest.approx(decided, abs=1e-4)
    app.state.service.close()


def test_the_app_refuses_an_empty_set_where_the_project_forbids_it(tmp_path):
    from fastapi.testclient import TestClient

    from active_labeling.labeling.app import create_app
    from active_labeling.labeling.auth import add_user

    project = make_multilabel_project(tmp_path / "p", n=20, n_labels=0, allow_empty=False)
    with project.connect() as con:
        password = add_user(con, "ann", "labeler")
    app = create_app(project.root)
    client = TestClient(app)
    response = client.post("/api/login", json={"username": "ann", "password": password})
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    item = client.get("/api/items/next").json()["items"][0]["item_id"]
    empty = client.post(f"/api/items/{item}/label", json={"labels": []})
    assert empty.status_code == 422
    assert empty.json()["detail"].startswith("labels: choose at least one class")
    assert client.post(f"/api/items/{item}/label", json={"labels": ["blue"]}).status_code == 200
    app.state.service.close()
