"""A multi-label project's loop: train, rank the queue, and refuse what does not fit."""

from __future__ import annotations

import json

import numpy as np
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
