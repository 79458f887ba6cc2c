"""The query sampler on Dask and on Spark selects what the local engine selects.

One Dask cluster (2 in-process workers) and one Spark session (local[2]) serve the whole
module. The pools are small, made of few distinct rows repeated, so that many rows tie on
their score: only the global tie-break (the earlier row wins) makes the engines agree.
Spark tests skip when Java is missing.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from active_labeling.errors import InputError
from active_labeling.flow.engines import LocalEngine
from active_labeling.flow.engines.dask import DaskEngine
from active_labeling.flow.engines.partition import load_pipeline, position_keys
from active_labeling.flow.engines.pool import describe_files, open_pool
from active_labeling.flow.engines.spark import SparkEngine, java_problem
from active_labeling.flow.project import Project
from active_labeling.flow.query_sampler import QuerySamplerParams, query_sampler
from active_labeling.flow.recipes import add_recipe, run_recipe
from active_labeling.flow.train_model import TrainModelParams, train_model
from active_labeling.models import load_model
from active_labeling.store import datasets, labels, queue

from flow_helpers import make_project, write_labels_csv

FILE_ROWS = (230, 170, 200)
ROW_GROUP_ROWS = 40


def _write_parquet_pool(folder: Path, seed: int = 0) -> list[Path]:
    """Three files of few distinct rows (so scores tie), in row groups of 40 rows.

    The columns are float32, so the model's feature space is float32 too.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    paths = []
    for f, n in enumerate(FILE_ROWS):
        table = pa.table(
            {
                "x1": rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], n).astype(np.float32),
                "x2": rng.choice([0.0, 1.0], n).astype(np.float32),
                "x3": rng.choice([0.0, 0.25, 2.0], n).astype(np.float32),
            }
        )
        paths.append(folder / f"part-{f}.parquet")
        pq.write_table(table, paths[-1], row_group_size=ROW_GROUP_ROWS)
    return paths


def _train(project: Project, con) -> None:
    train_model(con, project, dataset="pool", model="clf", params=TrainModelParams(cv_folds=2))


@pytest.fixture(scope="module")
def parquet_project(tmp_path_factory):
    """A pool registered in place over three Parquet files (ids from file and row)."""
    root = tmp_path_factory.mktemp("engines") / "project"
    project = Project.init(root, classes=["yes", "no"])
    _write_parquet_pool(root.parent / "data")
    with project.connect() as con:
        info = datasets.register_parquet(con, "pool", str(root.parent / "data" / "part-*.parquet"))
        project.record_dataset(info)
        frame = con.execute("SELECT item_id, x1 FROM dataset_pool").df()
        seed = frame.iloc[::15]  # 40 labels, spread over the three files
        answers = np.where(seed["x1"] + np.arange(len(seed)) % 3 * 0.3 > 0.2, "yes", "no")
        write_labels_csv(root / "labels.csv", seed["item_id"], answers)
        labels.import_labels(con, "pool", root / "labels.csv", classes=["yes", "no"])
        _train(project, con)
    return project


@pytest.fixture(scope="module")
def table_project(tmp_path_factory):
    """A pool copied into the store from CSV: numbers, categories and text."""
    project = make_project(tmp_path_factory.mktemp("engines") / "table", n=240, n_labels=30)
    with project.connect() as con:
        _train(project, con)
    return project


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def spark_session():
    problem = java_problem()
    if problem:
        pytest.skip(f"Spark tests need Java: {problem}")
    pytest.importorskip("pyspark")
    import os
    import sys

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("active-labeling tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        # Small splits: files cut at row groups into several partitions.
        .config("spark.sql.files.maxPartitionBytes", "4k")
        .config("spark.driver.memory", "512m")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module", params=["dask", "spark"])
def engine(request):
    if request.param == "dask":
        # 60 rows at most: one 40-row group per partition, 15 partitions.
        return DaskEngine(client=request.getfixturevalue("dask_client"), partition_rows=60)
    return SparkEngine(session=request.getfixturevalue("spark_session"))


def _query(project, engine, **params):
    """Run the query sampler; the generation's item ids and scores."""
    with project.connect() as con:
        result = query_sampler(
            con,
            project,
            dataset="pool",
            model="clf",
            queue="q",
            params=QuerySamplerParams(
                **{"queue_size": 25, "chunk_size": 64, "engine": engine.name, **params}
            ),
            engine=engine,
        )
        items = queue.generation_items(con, result.generation.generation_id)
    return items["item_id"].tolist(), items["score"].to_numpy(), result.generation


def _same_as_local(project, engine, strategy):
    local_ids, local_scores, local_gen = _query(project, LocalEngine(), strategy=strategy)
    ids, scores, gen = _query(project, engine, strategy=strategy)
    # The pool repeats few rows: the queue holds ties, which only the tie-break orders.
    assert len(np.unique(local_scores)) < len(local_scores)
    assert ids == local_ids
    np.testing.assert_allclose(scores, local_scores, rtol=0, atol=1e-12)
    assert gen.pool_rows == local_gen.pool_rows == sum(FILE_ROWS) - 40


@pytest.mark.parametrize("strategy", ["margin", "entropy", "least_confidence"])
def test_scored_strategies_select_exactly_the_local_rows(parquet_project, engine, strategy):
    _same_as_local(parquet_project, engine, strategy)


def test_the_committee_refit_on_each_worker_selects_the_local_rows(parquet_project, dask_client):
    """Its members are fitted again on the workers, from the same seed (Dask only: the
    partition code is the same on Spark, whose jobs cost seconds)."""
    _same_as_local(parquet_project, DaskEngine(client=dask_client, partition_rows=60), "committee")


def test_iwkmeans_selects_the_local_rows(parquet_project, dask_client):
    engine = DaskEngine(client=dask_client, partition_rows=60)
    local_ids, _, _ = _query(parquet_project, LocalEngine(), strategy="iwkmeans", queue_size=8)
    ids, _, _ = _query(parquet_project, engine, strategy="iwkmeans", queue_size=8)
    assert ids == local_ids and len(set(ids)) == 8


def test_a_table_pool_is_exported_scored_and_cleaned_up(table_project, dask_client):
    """Dask only: the export is the same for both engines, and Spark jobs cost seconds."""
    engine = DaskEngine(client=dask_client, partition_rows=60)
    local_ids, local_scores, _ = _query(table_project, LocalEngine(), strategy="margin")
    ids, scores, _ = _query(table_project, engine, strategy="margin")
    assert ids == local_ids
    np.testing.assert_allclose(scores, local_scores, rtol=0, atol=1e-12)
    assert not list(table_project.exports_dir.glob(".engine-*"))


def test_wkmeans_selects_the_local_rows(parquet_project, engine):
    """Its prefilter keeps the exact top beta x queue rows, so the k-means sees the same."""
    local_ids, _, _ = _query(parquet_project, LocalEngine(), strategy="wkmeans", queue_size=8)
    ids, scores, _ = _query(parquet_project, engine, strategy="wkmeans", queue_size=8)
    assert ids == local_ids
    assert np.all(np.diff(scores) <= 0)


def _covering_radius(project, selected: list[str]) -> float:
    """The largest distance of an unlabeled row to the nearest labeled or selected row."""
    saved = load_model(project.models_dir, "clf")
    with project.connect(read_only=True) as con:
        frame = con.execute("SELECT * FROM dataset_pool").df()
        labeled = set(labels.labeled_item_ids(con, "pool"))
    X = saved.pipeline[:-1].transform(frame[saved.meta.feature_columns])
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X)
    centers = X[frame["item_id"].isin(labeled | set(selected)).to_numpy()]
    pool = X[~frame["item_id"].isin(labeled).to_numpy()]
    d2 = ((pool[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    return float(np.sqrt(d2.max()))


def test_kcenter_in_two_stages_is_valid_and_within_its_bound(table_project, engine):
    """Per-partition k-center, then k-center on the union: a 4-approximation, so never
    worse than 4x the radius of the local greedy (itself at least the optimum)."""
    local_ids, _, _ = _query(table_project, LocalEngine(), strategy="kcenter", queue_size=10)
    ids, scores, gen = _query(
        table_project, engine, strategy="kcenter", queue_size=10, partition_candidates=10
    )
    with table_project.connect(read_only=True) as con:
        labeled = labels.labeled_item_ids(con, "pool")
        pool_ids = set(con.execute("SELECT item_id FROM dataset_pool").df()["item_id"])
    assert len(ids) == len(set(ids)) == 10
    assert set(ids) <= pool_ids - labeled
    assert np.isnan(scores).all() and gen.strategy == "kcenter"
    assert _covering_radius(table_project, ids) <= 4 * _covering_radius(table_project, local_ids)


def test_random_is_seeded_and_does_not_depend_on_the_partitions(parquet_project, dask_client):
    """Keys hash (seed, global position): 15 partitions or 3, the same rows (Spark's splits
    run the same partition code)."""
    many = DaskEngine(client=dask_client, partition_rows=60)
    few = DaskEngine(client=dask_client, partition_rows=10_000)
    first, _, _ = _query(parquet_project, many, strategy="random", random_state=3)
    again, _, _ = _query(parquet_project, few, strategy="random", random_state=3)
    other, _, _ = _query(parquet_project, many, strategy="random", random_state=4)
    assert first == again
    assert len(set(first)) == 25 and set(first) != set(other)


def test_an_infinite_value_on_a_worker_names_item_and_column(tmp_path, engine):
    project = make_project(tmp_path / "p", n=80, n_labels=20)
    with project.connect() as con:
        _train(project, con)
        con.execute("UPDATE dataset_pool SET age = 'inf'::DOUBLE WHERE item_id = 'I77'")
    with pytest.raises(InputError, match=r"item 'I77', column 'age' holds inf"):
        _query(project, engine, strategy="margin")
    with project.connect(read_only=True) as con:
        assert queue.latest_generation(con, "q") is None  # nothing written


def test_the_recipe_with_engine_dask_or_spark_writes_the_local_queue(
    parquet_project, engine, monkeypatch
):
    if isinstance(engine, DaskEngine):
        # No address: the engine starts a local cluster of worker processes (one, to keep
        # the test short), spawned while the host runs recipe.py as __main__.
        monkeypatch.setattr("active_labeling.flow.engines.dask.os.cpu_count", lambda: 1)
        extra = {}
    else:
        extra = {}  # the module's session is active: the engine uses it
    name = f"query_{engine.name}"
    for recipe, params in (("query_local", {}), (name, {"engine": engine.name, **extra})):
        add_recipe(
            parquet_project,
            "query-sampler",
            recipe,
            inputs={"pool": ["pool"], "model": ["clf"]},
            outputs={"queue": [recipe]},
            params={"queue_size": 12, **params},
        )
        run_recipe(parquet_project, recipe, progress=False)
    with parquet_project.connect(read_only=True) as con:
        local = queue.generation_items(con, queue.latest_generation(con, "query_local"))
        remote = queue.generation_items(con, queue.latest_generation(con, name))
        params = con.execute(
            "SELECT params FROM queue_generations WHERE queue = ? ORDER BY generation_id DESC",
            [name],
        ).fetchone()[0]
    assert remote["item_id"].tolist() == local["item_id"].tolist()
    assert remote["rank"].tolist() == list(range(1, 13))
    assert f'"engine": "{engine.name}"' in params


# --- without a cluster ------------------------------------------------------------------------


def test_item_ids_and_positions_follow_the_store(parquet_project):
    """The engines' ids for every row are the store's, in the store's order."""
    with parquet_project.connect(read_only=True) as con:
        stored = con.execute("SELECT item_id FROM dataset_pool").df()["item_id"].tolist()
        with open_pool(con, parquet_project, "pool", ["x1"], 64) as pool:
            file_index = np.repeat(np.arange(3), FILE_ROWS)
            rows = np.concatenate([np.arange(n) for n in FILE_ROWS])
            assert pool.item_ids(file_index, rows).to_pylist() == stored
            assert pool.positions_of(stored[::7]).tolist() == list(range(0, len(stored), 7))
            units = pool.units(60)
            assert [u.rows for u in units[:7]] == [40, 40, 40, 40, 40, 30, 40]
            assert sum(u.rows for u in units) == sum(FILE_ROWS)


def test_an_id_column_of_floats_is_refused_naming_it(tmp_path):
    path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"key": [1.5, 2.5], "x": [0.0, 1.0]}), path)
    with pytest.raises(InputError, match=r"id column 'key' is double"):
        describe_files("pool", [str(path)], ["x"], "key")


def test_position_keys_are_uniform_seeded_and_distinct():
    keys = position_keys(np.arange(200_000), seed=7)
    assert np.array_equal(keys, position_keys(np.arange(200_000), seed=7))
    assert not np.array_equal(keys, position_keys(np.arange(200_000), seed=8))
    counts, _ = np.histogram(keys, bins=10, range=(0, 1))
    assert np.all(np.abs(counts - 20_000) < 5 * np.sqrt(20_000))  # 5 sigma
    assert len(np.unique(keys)) == keys.shape[0]


def test_workers_load_the_model_with_the_same_checks(table_project):
    saved = load_model(table_project.models_dir, "clf")
    pipeline = load_pipeline((saved.path / "model.skops").read_bytes())
    assert type(pipeline[-1]) is type(saved.pipeline[-1])
    import pickle

    with pytest.raises(InputError, match="not a skops file"):
        load_pipeline(pickle.dumps(saved.pipeline))


def test_engine_params_are_checked_naming_the_field():
    with pytest.raises(ValueError, match=r"dask_scheduler[\s\S]*engine is 'local'"):
        QuerySamplerParams(dask_scheduler="tcp://h:8786")
    with pytest.raises(ValueError, match=r"spark_master[\s\S]*engine is 'dask'"):
        QuerySamplerParams(engine="dask", spark_master="local[2]")
    with pytest.raises(ValueError, match="partition_candidates"):
        QuerySamplerParams(partition_candidates=10)
    assert QuerySamplerParams(engine="spark", spark_master="").spark_master is None


def test_partition_candidates_below_the_queue_size_are_refused(table_project, dask_client):
    with pytest.raises(InputError, match="partition_candidates=5 is less than queue_size=25"):
        _query(
            table_project,
            DaskEngine(client=dask_client),
            strategy="kcenter",
            partition_candidates=5,
        )


def test_spark_without_java_says_what_to_install(table_project, monkeypatch, tmp_path):
    pytest.importorskip("pyspark")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))  # no bin/java there
    assert "default-jre-headless" in java_problem()
    with pytest.raises(InputError, match="default-jre-headless"):
        _query(table_project, SparkEngine(master="local[1]"), strategy="margin")


def test_float32_columns_are_scored_in_float64_so_batches_do_not_matter():
    """In float32 a row's score moves by ~1e-7 with the batch around it (BLAS kernels),
    enough to reorder close rows between engines; read as float64 it moves by ~1e-16."""
    import pandas as pd

    from active_labeling.flow.engines import model_input
    from active_labeling.models import train_classifier
    from active_labeling.samplers.scores import margin

    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 50)).astype(np.float32)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(50)])
    y = np.where(X[:, :5].sum(axis=1) > 0, "a", "b")
    model = train_classifier(frame[:500], y[:500], feature_columns=list(frame), cv=2).pipeline

    def scores(batch_rows: int, prepare) -> np.ndarray:
        batches = [frame[s : s + batch_rows] for s in range(0, len(frame), batch_rows)]
        return np.concatenate([margin(model.predict_proba(prepare(b))) for b in batches])

    as_stored = np.abs(scores(3000, lambda b: b) - scores(37, lambda b: b)).max()
    as_read = np.abs(
        scores(3000, lambda b: model_input(model, b, False))
        - scores(37, lambda b: model_input(model, b, False))
    ).max()
    if as_stored < 1e-9:
        pytest.skip("this BLAS rounds float32 scores alike whatever the batch")
    assert as_read < 1e-12
    assert model_input(model, frame[:2], True).dtype == np.float64


# -- multi-label ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def multilabel_project(tmp_path_factory):
    """The Parquet pool of ``parquet_project`` in a multi-label project (classes a, b, c),
    with label sets for 40 items and a one-vs-rest model."""
    root = tmp_path_factory.mktemp("engines-multilabel") / "project"
    project = Project.init(root, classes=["a", "b", "c"], multi_label=True)
    _write_parquet_pool(root.parent / "data")
    with project.connect() as con:
        info = datasets.register_parquet(con, "pool", str(root.parent / "data" / "part-*.parquet"))
        project.record_dataset(info)
        frame = con.execute("SELECT item_id, x1, x2, x3 FROM dataset_pool").df().iloc[::15]
        noise = np.arange(len(frame)) % 3 * 0.3
        sets = [
            json.dumps([c for c, held in zip("abc", row, strict=True) if held])
            for row in zip(
                frame["x1"] + noise > 0.2, frame["x2"] > 0.5, frame["x3"] - noise > 0.1, strict=True
            )
        ]
        write_labels_csv(
            root / "labels.csv", frame["item_id"], ['"' + s.replace('"', '""') + '"' for s in sets]
        )
        labels.import_labels(
            con, "pool", root / "labels.csv", classes=["a", "b", "c"], multi_label=True
        )
        _train(project, con)
    return project


@pytest.mark.parametrize(
    "strategy", ["mean_binary_uncertainty", "max_binary_uncertainty", "mmc", "label_cardinality"]
)
def test_scored_multilabel_strategies_select_exactly_the_local_rows_on_dask(
    multilabel_project, dask_client, strategy
):
    """MMC's label-count model and label cardinality's mean are fitted again on each worker
    from the labeled rows; every score is a row's own."""
    _same_as_local(multilabel_project, DaskEngine(client=dask_client, partition_rows=60), strategy)


@pytest.mark.parametrize("strategy", ["mean_binary_uncertainty", "mmc"])
def test_scored_multilabel_strategies_select_exactly_the_local_rows_on_spark(
    multilabel_project, spark_session, strategy
):
    _same_as_local(multilabel_project, SparkEngine(session=spark_session), strategy)


def test_wkmeans_on_a_multilabel_model_selects_the_local_rows(multilabel_project, dask_client):
    engine = DaskEngine(client=dask_client, partition_rows=60)
    local_ids, _, _ = _query(multilabel_project, LocalEngine(), strategy="wkmeans", queue_size=8)
    ids, _, generation = _query(multilabel_project, engine, strategy="wkmeans", queue_size=8)
    assert ids == local_ids and len(set(ids)) == 8
    with multilabel_project.connect(read_only=True) as con:
        params = con.execute(
            "SELECT params FROM queue_generations WHERE generation_id = ?",
            [generation.generation_id],
        ).fetchone()[0]
    assert json.loads(params)["strategy_params"] == {"uncertainty": "mean_binary"}
