"""The flow host: project files, descriptors, declaring and running the two recipes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from active_labeling.errors import InputError
from active_labeling.flow.descriptors import (
    PluginDescriptor,
    RecipeDescriptor,
    load_descriptor,
    plugin_root,
    recipe_descriptor,
    recipe_types,
)
from active_labeling.flow.project import Project
from active_labeling.flow.query_sampler import QuerySamplerParams, query_sampler
from active_labeling.flow.recipes import RECIPE_PARAMS, add_recipe, run_recipe
from active_labeling.samplers.registry import MULTI_LABEL_STRATEGIES, STRATEGIES
from active_labeling.store import queue

from flow_helpers import declare_train_and_query, make_project, store_fingerprint


def test_project_init_writes_the_files_and_refuses_twice(tmp_path):
    project = Project.init(tmp_path / "p", classes=["a", "b"])
    assert (tmp_path / "p" / "project.toml").is_file()
    assert (tmp_path / "p" / "store.duckdb").is_file()
    assert Project.open(tmp_path / "p").settings.classes == ["a", "b"]
    with pytest.raises(InputError, match="already exists"):
        Project.init(tmp_path / "p")
    assert project.settings.name == "p"


def test_a_broken_project_file_is_named_with_its_field(tmp_path):
    project = Project.init(tmp_path / "p")
    text = project.config_path.read_text() + "\n[recipes.r]\ninputs = {}\n"
    project.config_path.write_text(text)
    with pytest.raises(InputError, match=r"project\.toml: recipes\.r\.type: Field required"):
        Project.open(tmp_path / "p")
    project.config_path.write_text("[project\n")
    with pytest.raises(InputError, match="not valid TOML"):
        Project.open(tmp_path / "p")
    with pytest.raises(InputError, match="is not a project"):
        Project.open(tmp_path / "elsewhere")


def test_descriptors_load_and_broken_ones_name_file_and_field(tmp_path):
    root = plugin_root()
    plugin = load_descriptor(root / "plugin.json", PluginDescriptor)
    assert plugin.id == "active-labeling"
    assert set(recipe_types()) == {"train-model", "query-sampler", "monitoring"}
    broken = tmp_path / "recipe.json"
    broken.write_text(json.dumps({"meta": {"label": "x"}, "inputRoles": [{"name": "a"}]}))
    with pytest.raises(InputError, match=r"recipe\.json: inputRoles\.0\.label: Field required"):
        load_descriptor(broken, RecipeDescriptor)
    broken.write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_descriptor(broken, RecipeDescriptor)


@pytest.mark.parametrize("recipe_type", ["train-model", "query-sampler", "monitoring"])
def test_recipe_json_params_agree_with_the_params_model(recipe_type):
    """The pydantic model is the one source of defaults; the descriptor must match it."""
    descriptor = recipe_descriptor(recipe_type)
    model = RECIPE_PARAMS[recipe_type]
    defaults = model().model_dump()
    assert [p.name for p in descriptor.params] == list(model.model_fields)
    for param in descriptor.params:
        expected = defaults[param.name]
        assert param.defaultValue == expected, param.name
        if param.type == "SELECT":
            choices = [c.value for c in param.selectChoices]
            field = model.model_fields[param.name].annotation
            assert choices == list(field.__args__), param.name
    if recipe_type == "query-sampler":
        strategy = next(p for p in descriptor.params if p.name == "strategy")
        assert [c.value for c in strategy.selectChoices] == [*STRATEGIES, "auto", "precomputed"]


def test_recipe_declarations_are_checked_before_they_are_written(tmp_path):
    project = make_project(tmp_path / "p", n=60, n_labels=10)
    before = project.config_path.read_text()
    cases = [
        (dict(inputs={"dataset": ["pool"]}, outputs={"model": ["m"]}), "role 'labels' is required"),
        (
            dict(inputs={"dataset": ["nope"], "labels": ["labels"]}, outputs={"model": ["m"]}),
            "no such dataset",
        ),
        (
            dict(
                inputs={"dataset": ["pool", "pool"], "labels": ["labels"]}, outputs={"model": ["m"]}
            ),
            "exactly one name",
        ),
        (
            dict(
                inputs={"dataset": ["pool"], "labels": ["labels"], "x": ["y"]},
                outputs={"model": ["m"]},
            ),
            "no input role 'x'",
        ),
    ]
    for bindings, message in cases:
        with pytest.raises(InputError, match=message):
            add_recipe(project, "train-model", "train", params={}, **bindings)
    with pytest.raises(InputError, match="cv_folds"):
        add_recipe(
            project,
            "train-model",
            "train",
            inputs={"dataset": ["pool"], "labels": ["labels"]},
            outputs={"model": ["m"]},
            params={"cv_folds": 1},
        )
    with pytest.raises(InputError, match="unknown recipe type"):
        add_recipe(project, "nope", "x", inputs={}, outputs={}, params={})
    assert project.config_path.read_text() == before


def _declare_both(project, **query_params):
    declare_train_and_query(project, **{"queue_size": 15, "chunk_size": 64, **query_params})


def test_train_then_query_writes_a_model_version_and_a_queue_generation(tmp_path, capsys):
    project = make_project(tmp_path / "p", n=300, n_labels=40)
    _declare_both(project)
    run_recipe(project, "train", progress=False)
    assert "model 'clf' version 1" in capsys.readouterr().out
    meta = json.loads((project.models_dir / "clf" / "1" / "meta.json").read_text())
    assert meta["training_rows"] == 40 and meta["feature_columns"] == ["age", "city", "review"]
    run_recipe(project, "query", progress=False)
    assert "generation 1, 15 items ranked by margin among 260 unlabeled" in capsys.readouterr().out
    with project.connect(read_only=True) as con:
        items = queue.generation_items(con, 1)
        labeled = {r[0] for r in con.execute("SELECT item_id FROM current_labels").fetchall()}
    assert items["rank"].tolist() == list(range(1, 16))
    assert not set(items["item_id"]) & labeled  # never ranks what is labeled
    assert items["score"].is_monotonic_decreasing
    parquet = pd.read_parquet(project.exports_dir / "queues" / "queue" / "generation-1.parquet")
    assert parquet["item_id"].tolist() == items["item_id"].tolist()
    run_recipe(project, "train", progress=False)
    assert (project.models_dir / "clf" / "2" / "meta.json").is_file()


def test_the_queue_matches_the_sampler_on_the_whole_pool(tmp_path):
    """Streaming in chunks of 64 selects what the sampler selects on the whole pool at once."""
    from active_labeling.flow.labeled_data import labeled_frame
    from active_labeling.models import load_model
    from active_labeling.samplers import MarginSampler
    from active_labeling.store.datasets import require_dataset

    project = make_project(tmp_path / "p", n=300, n_labels=40)
    _declare_both(project)
    run_recipe(project, "train", progress=False)
    run_recipe(project, "query", progress=False)
    saved = load_model(project.models_dir, "clf")
    with project.connect(read_only=True) as con:
        frame = con.execute(f"SELECT * FROM {require_dataset(con, 'pool')}").df()
        labeled, _ = labeled_frame(con, "pool", saved.meta.feature_columns)
        got = queue.generation_items(con, 1)["item_id"].tolist()
    pool = frame[~frame["item_id"].isin(labeled.index)].reset_index(drop=True)
    sampler = MarginSampler(saved.pipeline, 15, prefit=True).fit()
    expected = pool["item_id"].iloc[sampler.select_samples(pool[saved.meta.feature_columns])]
    assert got == expected.tolist()


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s not in MULTI_LABEL_STRATEGIES])
def test_every_strategy_runs_as_a_recipe(strategy, tmp_path):
    project = make_project(tmp_path / "p", n=200, n_labels=30)
    _declare_both(project, strategy=strategy, random_state=1)
    run_recipe(project, "train", progress=False)
    run_recipe(project, "query", progress=False)
    with project.connect(read_only=True) as con:
        first = queue.generation_items(con, 1)["item_id"].tolist()
    run_recipe(project, "query", progress=False)
    with project.connect(read_only=True) as con:
        second = queue.generation_items(con, 2)["item_id"].tolist()
    assert len(first) == 15 and len(set(first)) == 15
    assert first == second  # same seed, same queue


def test_auto_chooses_from_the_metrics_and_records_why(tmp_path, capsys):
    project = make_project(tmp_path / "p", n=200, n_labels=30)
    _declare_both(project, strategy="auto", strategy_params={"start": "kcenter"})
    run_recipe(project, "train", progress=False)
    run_recipe(project, "query", progress=False)
    assert "auto chose kcenter (start)" in capsys.readouterr().out
    run_recipe(project, "query", progress=False)
    # Two kcenter batches on which the model and a 1-NN rule agreed more than on random
    # rows: the batches are easy, pick harder ones.
    with project.connect() as con:
        for version, ours, theirs in (("2", 0.9, 0.6), ("3", 0.95, 0.7)):
            for metric, value in (("batch_agreement", ours), ("random_batch_agreement", theirs)):
                con.execute(
                    "INSERT INTO metrics VALUES ('pool', ?, ?, 'clf', ?, 30, now(), '{}')",
                    [metric, value, version],
                )
    run_recipe(project, "query", progress=False)
    assert "auto chose wkmeans (harder)" in capsys.readouterr().out
    with project.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT strategy, params FROM queue_generations ORDER BY generation_id"
        ).fetchall()
        third = queue.generation_items(con, 3)
    assert [r[0] for r in rows] == ["kcenter", "kcenter", "wkmeans"]
    recorded = json.loads(rows[2][1])
    assert recorded["strategy"] == "auto" and recorded["auto"]["chosen"] == "wkmeans"
    assert "than on random rows" in recorded["auto"]["reasons"][0]
    assert set(third["strategy"]) == {"wkmeans"} and len(third) == 15
    with project.connect() as con, pytest.raises(InputError, match="auto takes start"):
        query_sampler(
            con,
            project,
            dataset="pool",
            model="clf",
            queue="queue",
            params=QuerySamplerParams(strategy="auto", strategy_params={"begin": "margin"}),
        )


def test_pool_missing_a_model_column_is_named_and_nothing_is_written(tmp_path):
    project = make_project(tmp_path / "p", n=120, n_labels=20)
    _declare_both(project)
    run_recipe(project, "train", progress=False)
    other = tmp_path / "other.csv"
    other.write_text("id,age,town\n" + "".join(f"J{i},{i},Lyon\n" for i in range(30)))
    from active_labeling.store import datasets

    with project.connect() as con:
        project.record_dataset(datasets.import_file(con, "other", other, id_column="id"))
    before = store_fingerprint(project)
    with project.connect() as con, pytest.raises(InputError, match=r"city|review"):
        query_sampler(
            con, project, dataset="other", model="clf", queue="q", params=QuerySamplerParams()
        )
    assert store_fingerprint(project) == before


def test_unseen_categories_at_scoring_are_ignored_not_fatal(tmp_path):
    project = make_project(tmp_path / "p", n=120, n_labels=20)
    _declare_both(project)
    run_recipe(project, "train", progress=False)
    with project.connect() as con:
        con.execute("UPDATE dataset_pool SET city = 'Atlantis' WHERE item_id = 'I7'")
        result = query_sampler(
            con,
            project,
            dataset="pool",
            model="clf",
            queue="q",
            params=QuerySamplerParams(queue_size=200),
        )
    assert result.generation.n_items == 100  # 120 - 20 labeled: the whole pool, Atlantis too


@pytest.mark.parametrize("strategy", ["margin", "kcenter"])
def test_the_query_progress_counts_every_row_of_the_dataset(tmp_path, strategy):
    """The recipe's bar has the dataset's rows as its total: the labeled rows, left out of
    the pool, count as read (the bar stopped at 93% here, at 99% with 1% labeled)."""
    project = make_project(tmp_path / "p", n=300, n_labels=20)
    _declare_both(project)
    run_recipe(project, "train", progress=False)
    done: list[int] = []
    with project.connect() as con:
        query_sampler(
            con,
            project,
            dataset="pool",
            model="clf",
            queue="q",
            params=QuerySamplerParams(strategy=strategy, chunk_size=64),
            progress=done.append,
        )
    assert sum(done) == project.dataset("pool").rows == 300
    assert len(done) == 5  # one step per chunk read


def test_infinite_feature_is_named_by_item_and_column(tmp_path):
    project = make_project(tmp_path / "p", n=120, n_labels=20)
    _declare_both(project)
    run_recipe(project, "train", progress=False)
    with project.connect() as con:
        con.execute("UPDATE dataset_pool SET age = 'inf'::DOUBLE WHERE item_id = 'I9'")
    before = store_fingerprint(project)
    with pytest.raises(InputError, match=r"item 'I9'.*column 'age'.*inf"):
        run_recipe(project, "query", progress=False)
    assert store_fingerprint(project) == before


@pytest.mark.parametrize("damage", ["garbage", "foreign", "meta"])
def test_a_damaged_model_is_refused_and_nothing_is_written(damage, tmp_path):
    project = make_project(tmp_path / "p", n=120, n_labels=20)
    _declare_both(project)
    run_recipe(project, "train", progress=False)
    version = project.models_dir / "clf" / "1"
    if damage == "garbage":
        (version / "model.skops").write_bytes(np.random.default_rng(0).bytes(500))
    elif damage == "foreign":
        import pickle

        (version / "model.skops").write_bytes(pickle.dumps({"not": "a model"}))
    else:
        (version / "meta.json").write_text('{"version": "1"}')
    before = store_fingerprint(project)
    with pytest.raises(InputError, match=r"model\.skops|meta\.json"):
        run_recipe(project, "query", progress=False)
    assert store_fingerprint(project) == before


def test_a_fully_labeled_pool_has_nothing_to_queue(tmp_path):
    project = make_project(tmp_path / "p", n=40, n_labels=40)
    _declare_both(project)
    run_recipe(project, "train", progress=False)
    with pytest.raises(InputError, match="nothing to queue"):
        run_recipe(project, "query", progress=False)


def test_training_without_labels_says_how_to_get_some(tmp_path):
    project = Project.init(tmp_path / "p")
    from active_labeling.store import datasets

    from flow_helpers import write_pool_csv

    with project.connect() as con:
        project.record_dataset(
            datasets.import_file(con, "pool", write_pool_csv(tmp_path / "x.csv", 20))
        )
    add_recipe(
        project,
        "train-model",
        "train",
        inputs={"dataset": ["pool"], "labels": ["labels"]},
        outputs={"model": ["clf"]},
        params={},
    )
    with pytest.raises(InputError, match="no labeled item yet"):
        run_recipe(project, "train", progress=False)
    assert isinstance(Path(project.root), Path)


def test_after_a_replacement_under_the_server_the_handout_skips_the_items_gone(tmp_path):
    """Queue items and leases may name ids the replacing file lacks: they are left out."""
    from fastapi.testclient import TestClient

    from active_labeling.labeling.app import create_app
    from active_labeling.labeling.auth import add_user

    project = make_project(tmp_path / "p", n=80, n_labels=20)
    declare_train_and_query(project, run=True, queue_size=10)
    with project.connect() as con:
        password = add_user(con, "ann", "labeler")
        ranked = queue.generation_items(con, 1)["item_id"].tolist()
    app = create_app(project.root, cli_token="t0ken", scheduler=False)
    with TestClient(app) as client:
        login = client.post("/api/login", json={"username": "ann", "password": password})
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        held = [i["item_id"] for i in client.get("/api/items/next?count=2").json()["items"]]
        assert held == ranked[:2]
        gone = ranked[:4]  # two leased to ann, two next in the queue
        frame = pd.read_csv(project.root / "pool.csv")
        frame[~frame["id"].isin(gone)].to_csv(tmp_path / "new.csv", index=False)
        argv = ["dataset", "import", str(project.root), "pool", str(tmp_path / "new.csv")]
        answer = client.post(
            "/api/cli",
            json={"argv": [*argv, "--replace"], "cwd": str(tmp_path)},
            headers={"X-CLI-Token": "t0ken"},
        ).json()
        assert answer["code"] == 0, answer
        assert (
            "4 of the 10 queued items of dataset 'pool' are not in it any more"
            in (answer["stderr"])
        )
        response = client.get("/api/items/next?count=3")
        assert response.status_code == 200, response.text
        assert [i["item_id"] for i in response.json()["items"]] == ranked[4:7]
